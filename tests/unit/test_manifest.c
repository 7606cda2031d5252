/* test_manifest.c - the manifest reader: YAML and JSON files, directories
 * and streams from tests/unit/data/manifests, a table of YAML-to-JSON
 * conversions (compared with json_equal, so 3 and 3.0 differ), and a table
 * of errors, each with its code and the "name:line:" its message must
 * carry. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include <m3b/manifest.h>

#define DATA_DIR M3B_SOURCE_DIR "/tests/unit/data/manifests"
#define MAX_DOC 65536
#define MAX_DOCS 100

/* Reads text (as a stream named name) into a new set; asserts success. */
static m3b_manifest_set_t *read_text(const char *text, const char *name) {
  char errstr[256] = "";
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  FILE *stream = fmemopen((void *)text, strlen(text), "r");
  m3b_err_t err;

  assert_non_null(set);
  assert_non_null(stream);
  err = m3b_manifest_read_stream(set, stream, name, errstr, sizeof(errstr));
  fclose(stream);
  if (err)
    fail_msg("%s: %s", text, errstr);
  return set;
}

static json_t *doc(const m3b_manifest_set_t *set, size_t i, size_t *line) {
  json_t *json = NULL;
  m3b_manifest_get(set, i, &json, NULL, line);
  assert_non_null(json);
  return json;
}

static void assert_json(const json_t *json, const char *expected) {
  json_error_t json_error;
  json_t *want = json_loads(expected, 0, &json_error);
  char *got;
  if (!want)
    fail_msg("bad expectation %s: %s", expected, json_error.text);
  if (!json_equal(json, want)) {
    got = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(want);
    fail_msg("got %s, want %s", got, expected);
  }
  json_decref(want);
}

static const char *str_at(const json_t *json, const char *path) {
  /* path like "spec/template/metadata/labels/app" */
  char key[64];
  const char *slash;
  while ((slash = strchr(path, '/')) != NULL) {
    snprintf(key, sizeof(key), "%.*s", (int)(slash - path), path);
    json = json_object_get(json, key);
    path = slash + 1;
  }
  return json_string_value(json_object_get(json, path));
}

/* ---- files -------------------------------------------------------------- */

static void test_multi_doc_yaml(void **state) {
  char errstr[256] = "";
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  const char *path = NULL;
  json_t *json;
  json_t *spec;
  json_t *container;
  size_t line = 0;
  (void)state;

  assert_int_equal(
      m3b_manifest_read_path(set, DATA_DIR "/app.yaml", errstr, sizeof(errstr)),
      M3B_OK);
  assert_int_equal(m3b_manifest_count(set), 3);

  m3b_manifest_get(set, 0, &json, &path, &line);
  assert_string_equal(path, DATA_DIR "/app.yaml");
  assert_int_equal(line, 3);
  assert_json(json, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                    "\"metadata\":{\"name\":\"shop\"}}");

  json = doc(set, 1, &line);
  assert_int_equal(line, 9);
  assert_json(json_object_get(json, "data"),
              "{\"replicas\":\"3\",\"enabled\":\"true\","
              "\"script\":\"#!/bin/sh\\necho \\\"hello\\\"\\n\"}");

  json = doc(set, 2, &line);
  assert_int_equal(line, 21);
  spec = json_object_get(json, "spec");
  assert_true(json_is_integer(json_object_get(spec, "replicas")));
  assert_int_equal(json_integer_value(json_object_get(spec, "replicas")), 3);
  assert_string_equal(str_at(spec, "selector/matchLabels/app"), "web");
  assert_string_equal(str_at(spec, "template/metadata/labels/app"), "web");
  spec = json_object_get(json_object_get(spec, "template"), "spec");
  assert_true(json_is_true(json_object_get(spec, "enableServiceLinks")));
  container = json_array_get(json_object_get(spec, "containers"), 0);
  assert_string_equal(str_at(container, "image"), "nginx:1.25");
  assert_json(json_object_get(container, "ports"), "[{\"containerPort\":80}]");
  assert_json(json_object_get(container, "resources"),
              "{\"limits\":{\"cpu\":0.5,\"memory\":\"128Mi\"}}");
  assert_json(json_array_get(json_object_get(spec, "volumes"), 0),
              "{\"name\":\"config\",\"configMap\":{\"name\":\"web-config\","
              "\"defaultMode\":420}}");
  m3b_manifest_set_destroy(set);
}

static void test_json_file(void **state) {
  char errstr[256] = "";
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  size_t line = 0;
  (void)state;

  assert_int_equal(m3b_manifest_read_path(set, DATA_DIR "/service.json", errstr,
                                          sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(m3b_manifest_count(set), 1);
  /* 8080.0 is sent as 8080, as for YAML */
  assert_json(doc(set, 0, &line),
              "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
              "\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"ports\":[{"
              "\"port\":80,\"targetPort\":8080}],\"selector\":{\"app\":\"web\""
              "}}}");
  assert_int_equal(line, 1);
  m3b_manifest_set_destroy(set);
}

static void test_list_expansion(void **state) {
  char errstr[256] = "";
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  size_t line = 0;
  (void)state;

  assert_int_equal(m3b_manifest_read_path(set, DATA_DIR "/list.yaml", errstr,
                                          sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(m3b_manifest_count(set), 2);
  assert_json(doc(set, 0, &line), "{\"apiVersion\":\"v1\",\"kind\":"
                                  "\"ConfigMap\",\"metadata\":{\"name\":"
                                  "\"one\"}}");
  assert_int_equal(line, 4);
  assert_string_equal(str_at(doc(set, 1, &line), "stringData/token"), "007");
  assert_int_equal(line, 8);
  m3b_manifest_set_destroy(set);
}

static void test_directory_order(void **state) {
  static const char *const names[] = {"a", "b", "b2", "c"};
  static const char *const files[] = {"a.json", "b.yaml", "b.yaml", "c.yml"};
  static const size_t lines[] = {1, 1, 6, 1};
  char errstr[256] = "";
  char want_path[512];
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  const char *path;
  json_t *json;
  size_t line;
  size_t i;
  (void)state;

  assert_int_equal(
      m3b_manifest_read_path(set, DATA_DIR "/dir", errstr, sizeof(errstr)),
      M3B_OK);
  assert_int_equal(m3b_manifest_count(set), 4); /* not notes.txt nor sub/ */
  for (i = 0; i < 4; i++) {
    m3b_manifest_get(set, i, &json, &path, &line);
    snprintf(want_path, sizeof(want_path), "%s/dir/%s", DATA_DIR, files[i]);
    assert_string_equal(path, want_path);
    assert_string_equal(str_at(json, "metadata/name"), names[i]);
    assert_int_equal(line, lines[i]);
  }
  m3b_manifest_set_destroy(set);
}

static void test_stdin_stream(void **state) {
  m3b_manifest_set_t *set;
  const char *path;
  size_t line;
  (void)state;

  set = read_text("\xEF\xBB\xBF# from stdin\nkind: A\n...\n---\nkind: B\n"
                  "--- ~\n---\n",
                  "-");
  assert_int_equal(m3b_manifest_count(set), 2);
  m3b_manifest_get(set, 1, NULL, &path, &line);
  assert_string_equal(path, "-");
  assert_int_equal(line, 5);
  m3b_manifest_set_destroy(set);

  /* a stream starting with '{' is JSON, objects may follow each other */
  set = read_text("\n{\"kind\": \"A\"}\n{\"kind\":\n \"B\"} {\"kind\": 1.0}",
                  "-");
  assert_int_equal(m3b_manifest_count(set), 3);
  m3b_manifest_get(set, 1, NULL, NULL, &line);
  assert_int_equal(line, 3);
  assert_json(doc(set, 2, NULL), "{\"kind\": 1}");
  m3b_manifest_set_destroy(set);
}

/* ---- conversions -------------------------------------------------------- */

struct conversion_case {
  const char *yaml;
  const char *json;
};

static const struct conversion_case conversion_cases[] = {
    {"a: 3\nb: \"3\"\nc: '3'\n", "{\"a\":3,\"b\":\"3\",\"c\":\"3\"}"},
    {"a: true\nb: True\nc: TRUE\nd: false\ne: \"true\"\nf: 'false'\n",
     "{\"a\":true,\"b\":true,\"c\":true,\"d\":false,\"e\":\"true\","
     "\"f\":\"false\"}"},
    /* YAML 1.1 booleans, as kubectl (go-yaml v2) reads them */
    {"a: yes\nb: No\nc: on\nd: OFF\ne: y\nf: n\ng: yesno\nh: 'on'\n",
     "{\"a\":true,\"b\":false,\"c\":true,\"d\":false,\"e\":true,\"f\":false,"
     "\"g\":\"yesno\",\"h\":\"on\"}"},
    {"a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: 'null'\ng: \"\"\n",
     "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null,\"f\":\"null\","
     "\"g\":\"\"}"},
    {"a: -42\nb: +7\nc: 0644\nd: 0x1F\ne: 0b101\nf: 1_000\ng: 0o17\n"
     "h: 9223372036854775807\ni: -9223372036854775808\nj: 0\nk: -0x10\n",
     "{\"a\":-42,\"b\":7,\"c\":420,\"d\":31,\"e\":5,\"f\":1000,\"g\":15,"
     "\"h\":9223372036854775807,\"i\":-9223372036854775808,\"j\":0,"
     "\"k\":-16}"},
    {"a: 1.5\nb: 1e3\nc: -2.50\nd: .5\ne: 2.0\nf: 08\ng: 1e400\nh: 1.\n"
     "i: 6.02E+23\n",
     "{\"a\":1.5,\"b\":1000,\"c\":-2.5,\"d\":0.5,\"e\":2,\"f\":8,"
     "\"g\":\"1e400\",\"h\":1,\"i\":6.02e23}"},
    {"a: 1.2.3\nb: 2001-12-14\nc: 12:30\nd: -x\ne: v1\nf: 0x\ng: 1_0.5x\n"
     "h: .\ni: +\n",
     "{\"a\":\"1.2.3\",\"b\":\"2001-12-14\",\"c\":\"12:30\",\"d\":\"-x\","
     "\"e\":\"v1\",\"f\":\"0x\",\"g\":\"1_0.5x\",\"h\":\".\",\"i\":\"+\"}"},
    {"a: |\n  line1\n  line2\nb: >\n  folded\n  text\nc: |-\n  42\n"
     "d: >-\n  true\n",
     "{\"a\":\"line1\\nline2\\n\",\"b\":\"folded text\\n\",\"c\":\"42\","
     "\"d\":\"true\"}"},
    {"a: !!str 3\nb: !!str true\nc: ! 5\nd: !!map {x: 1}\ne: !!seq [1]\n",
     "{\"a\":\"3\",\"b\":\"true\",\"c\":\"5\",\"d\":{\"x\":1},\"e\":[1]}"},
    {"80: http\ntrue: t\n0x10: h\n'443': s\nno: n\n",
     "{\"80\":\"http\",\"true\":\"t\",\"16\":\"h\",\"443\":\"s\","
     "\"false\":false}"},
    {"base: &b {app: web}\nsel: *b\nlist: [&x 1, *x]\n&k key: v\nother: *k\n",
     "{\"base\":{\"app\":\"web\"},\"sel\":{\"app\":\"web\"},\"list\":[1,1],"
     "\"key\":\"v\",\"other\":\"key\"}"},
    {"a: [1, 'b', {c: null}, [], {}]\nb: \"tab\\there \\u00e9\"\n",
     "{\"a\":[1,\"b\",{\"c\":null},[],{}],\"b\":\"tab\\there \\u00e9\"}"},
    {"kind: List\n", NULL}, /* List without items: no documents */
};

static void test_conversions(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(conversion_cases) / sizeof(conversion_cases[0]); i++) {
    const struct conversion_case *c = &conversion_cases[i];
    m3b_manifest_set_t *set;
    set = read_text(c->yaml, "case.yaml");
    if (!c->json) {
      assert_int_equal(m3b_manifest_count(set), 0);
    } else {
      assert_int_equal(m3b_manifest_count(set), 1);
      assert_json(doc(set, 0, NULL), c->json);
    }
    m3b_manifest_set_destroy(set);
  }
}

/* ---- errors ------------------------------------------------------------- */

struct error_case {
  const char *yaml;
  size_t max_doc_bytes; /* 0: MAX_DOC */
  size_t max_docs;      /* 0: MAX_DOCS */
  m3b_err_t err;
  const char *where; /* "in.yaml:<line>:" prefix of the message */
  const char *has;   /* also in the message */
};

static const struct error_case error_cases[] = {
    {"a: b\nc: [1, 2\nd: e\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:3:", "invalid YAML: did not find expected ',' or ']'"},
    {"a: b\nc: d: e\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "mapping values are not allowed"},
    {"a:\n  b: 1\n c: 2\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:3:", "invalid YAML"},
    {"a: 'open\n", 0, 0, M3B_ERR_BAD_MANIFEST, "in.yaml:2:", "invalid YAML"},
    {"a: b\nc: \xff\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "invalid leading UTF-8 octet (byte 0xff)"},
    {"{\n  \"a\": 1,\n  \"b\":\n}\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:4:", "invalid JSON"},
    {"{\"a\": 1}\n\n{\n\"a\": 1,\n\"a\": 2\n}", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:5:", "duplicate object key"},
    {"{\"a\": \"\\u0000\"}", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "invalid JSON"},
    {"{\"a\": 99999999999999999999}", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "too big integer"},
    {"a: 1\n---\n- x\n- y\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:3:", "document is a sequence, not a mapping"},
    {"# comment\n\njust a string\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:3:", "document is a string, not a mapping"},
    {"--- \"\"\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "document is a string"},
    {"[{\"kind\": \"A\"}]", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "not a mapping"},
    {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", 0, 0,
     M3B_ERR_BAD_MANIFEST, "in.yaml:5:", "duplicate key 'name'"},
    {"80: a\n'80': b\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "duplicate key '80'"},
    {"true: a\nyes: b\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "duplicate key 'true'"},
    {"&k key: v\n*k : w\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "duplicate key 'key'"},
    {"base: &b {a: 1}\nx:\n  <<: *b\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:3:", "merge keys (<<) are not supported"},
    {"a: 1\nb: *nope\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "alias '*nope' has no anchor"},
    {"a: &x [*x]\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "alias '*x' has no anchor"},
    {"a: 1\n---\nb: &x 1\n---\nc: *x\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:5:", "has no anchor"},
    {"a: .inf\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "not representable in JSON: '.inf'"},
    {"a:\n  - -.INF\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "not representable"},
    {"a: .NaN\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "not representable"},
    {"a: 1\nb: 9223372036854775808\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "integer out of 64-bit range"},
    {"a: -0x8000000000000001\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "out of 64-bit range"},
    {"a: 1\n~: x\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "mapping key is a null"},
    {"1.5: x\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "mapping key is a number"},
    {"? [a]\n: x\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "mapping key is a sequence"},
    {"a: !!int 3\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "unsupported tag"},
    {"a:\n  b: !custom x\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:2:", "unsupported tag"},
    {"a: !!seq {b: 1}\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "unsupported tag"},
    {"a: \"x\\0y\"\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "NUL character"},
    {"kind: List\nitems:\n  - kind: A\n  - just a string\n", 0, 0,
     M3B_ERR_BAD_MANIFEST,
     "in.yaml:4:", "List item 1 is a string, not a mapping"},
    {"kind: List\nitems:\n  - kind: A\n  - kind: List\n    items: []\n", 0, 0,
     M3B_ERR_BAD_MANIFEST, "in.yaml:4:", "nested Lists are not supported"},
    {"kind: List\nitems: {a: 1}\n", 0, 0, M3B_ERR_BAD_MANIFEST,
     "in.yaml:1:", "List items is a mapping"},
    /* limits */
    {"a: 1\n---\nb: 2\n---\nc: 3\n", 0, 2, M3B_ERR_LIMIT,
     "in.yaml:5:", "more than 2 documents"},
    {"kind: List\nitems:\n- a: 1\n- b: 2\n- c: 3\n", 0, 2, M3B_ERR_LIMIT,
     "in.yaml:5:", "more than 2 documents"},
    {"a: 1\n---\nname: abcdefghijabcdefghijabcdefghijabcdefghij\n", 40, 0,
     M3B_ERR_LIMIT, "in.yaml:3:", "larger than 40 bytes as JSON"},
    {"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d]\n",
     1000, 0, M3B_ERR_LIMIT, "in.yaml:4:", "aliases expand to more than 1000"},
};

static void check_error(const struct error_case *c, const char *text,
                        const char *name) {
  char errstr[512] = "";
  size_t max_doc_bytes = c->max_doc_bytes ? c->max_doc_bytes : MAX_DOC;
  size_t max_docs = c->max_docs ? c->max_docs : MAX_DOCS;
  m3b_manifest_set_t *set = m3b_manifest_set_new(max_doc_bytes, max_docs);
  FILE *stream = fmemopen((void *)text, strlen(text), "r");
  m3b_err_t err;

  assert_non_null(set);
  assert_non_null(stream);
  err = m3b_manifest_read_stream(set, stream, name, errstr, sizeof(errstr));
  fclose(stream);
  if (err != c->err || strncmp(errstr, c->where, strlen(c->where)) != 0 ||
      !strstr(errstr, c->has))
    fail_msg("input %s: got %s \"%s\", want %s \"%s ... %s\"", text,
             m3b_err_name(err), errstr, m3b_err_name(c->err), c->where, c->has);
  assert_int_equal(m3b_manifest_count(set), 0); /* all or nothing */
  m3b_manifest_set_destroy(set);
}

static void test_errors(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
    check_error(&error_cases[i], error_cases[i].yaml, "in.yaml");
}

static void test_depth_limit(void **state) {
  enum { LEVELS = M3B_MANIFEST_MAX_DEPTH + 10 };
  static const struct error_case deep = {
      NULL, 0, 0, M3B_ERR_LIMIT, "in.yaml:1:", "nesting deeper"};
  static const struct error_case deep_json = {
      NULL, 0, 0, M3B_ERR_LIMIT, "in.yaml:1:", "nesting deeper"};
  char text[3 * LEVELS + 16];
  size_t n = 0;
  size_t i;
  (void)state;

  n += (size_t)snprintf(text, sizeof(text), "a: ");
  for (i = 0; i < LEVELS; i++)
    text[n++] = '[';
  for (i = 0; i < LEVELS; i++)
    text[n++] = ']';
  text[n++] = '\n';
  text[n] = '\0';
  check_error(&deep, text, "in.yaml");

  n = (size_t)snprintf(text, sizeof(text), "{\"a\": ");
  for (i = 0; i < LEVELS; i++)
    text[n++] = '[';
  for (i = 0; i < LEVELS; i++)
    text[n++] = ']';
  text[n++] = '}';
  text[n] = '\0';
  check_error(&deep_json, text, "in.yaml");
}

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/m3b-manifest-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text) {
  FILE *file = fopen(path, "w");
  assert_non_null(file);
  fputs(text, file);
  fclose(file);
}

static void expect_path_error(m3b_manifest_set_t *set, const char *path,
                              m3b_err_t want, const char *prefix,
                              const char *has) {
  char errstr[512] = "";
  size_t before = m3b_manifest_count(set);
  m3b_err_t err = m3b_manifest_read_path(set, path, errstr, sizeof(errstr));
  if (err != want || strncmp(errstr, prefix, strlen(prefix)) != 0 ||
      !strstr(errstr, has))
    fail_msg("%s: got %s \"%s\", want %s \"%s ... %s\"", path,
             m3b_err_name(err), errstr, m3b_err_name(want), prefix, has);
  assert_int_equal(m3b_manifest_count(set), before);
}

static void test_path_errors(void **state) {
  char dir[300];
  char path[400];
  char prefix[450];
  m3b_manifest_set_t *set = m3b_manifest_set_new(MAX_DOC, MAX_DOCS);
  char errstr[256] = "";
  (void)state;

  /* a good document first: failed reads must leave it alone */
  assert_int_equal(m3b_manifest_read_path(set, DATA_DIR "/list.yaml", errstr,
                                          sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(m3b_manifest_count(set), 2);

  expect_path_error(set, DATA_DIR "/errors/dup.yaml", M3B_ERR_BAD_MANIFEST,
                    DATA_DIR "/errors/dup.yaml:6:", "duplicate key 'name'");
  expect_path_error(set, DATA_DIR "/errors/bad.json", M3B_ERR_BAD_MANIFEST,
                    DATA_DIR "/errors/bad.json:4:", "invalid JSON");
  expect_path_error(set, DATA_DIR "/no-such-file.yaml", M3B_ERR_IO,
                    DATA_DIR "/no-such-file.yaml: cannot open", "No such file");

  /* an empty directory, and one with no manifest files */
  snprintf(dir, sizeof(dir), "%s/empty", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  expect_path_error(set, dir, M3B_ERR_NOT_FOUND, dir, "no *.yaml");
  snprintf(path, sizeof(path), "%s/README.md", dir);
  write_file(path, "kind: NotRead\n");
  expect_path_error(set, dir, M3B_ERR_NOT_FOUND, dir, "no *.yaml");

  /* a directory with a bad file after good ones: nothing is added */
  snprintf(dir, sizeof(dir), "%s/mixed", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof(path), "%s/1-good.yaml", dir);
  write_file(path, "kind: A\n---\nkind: B\n");
  snprintf(path, sizeof(path), "%s/2-bad.yml", dir);
  write_file(path, "kind: C\n---\nkind: D\nkind: E\n");
  snprintf(prefix, sizeof(prefix), "%s:4:", path);
  expect_path_error(set, dir, M3B_ERR_BAD_MANIFEST, prefix,
                    "duplicate key 'kind'");

  /* unreadable file (skipped when running as root) */
  snprintf(path, sizeof(path), "%s/secret.yaml", tmpdir);
  write_file(path, "kind: A\n");
  assert_int_equal(chmod(path, 0), 0);
  if (geteuid() != 0)
    expect_path_error(set, path, M3B_ERR_IO, path, "Permission denied");

  assert_int_equal(m3b_manifest_count(set), 2);
  m3b_manifest_set_destroy(set);
}

static void test_destroy_null(void **state) {
  (void)state;
  m3b_manifest_set_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multi_doc_yaml),
      cmocka_unit_test(test_json_file),
      cmocka_unit_test(test_list_expansion),
      cmocka_unit_test(test_directory_order),
      cmocka_unit_test(test_stdin_stream),
      cmocka_unit_test(test_conversions),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_path_errors),
      cmocka_unit_test(test_destroy_null),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
