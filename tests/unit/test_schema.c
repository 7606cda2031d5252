/* test_schema.c - Parsing Canonical Form and CRC-64-AVRO fingerprints
 * against the cases and fingerprints published with the Avro
 * specification (its schema-tests data set), the built-in schemas against
 * fingerprints computed independently with fastavro, and the registry's
 * refusal of invalid schemas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/schema.h>

struct canon_case {
  const char *input;
  const char *canonical;
  uint64_t fingerprint; /* 0: not published for this case */
};

/* Fingerprints as the specification publishes them: signed 64-bit. */
#define SPEC_FP(signed_value) ((uint64_t)INT64_C(signed_value))
static const struct canon_case canon_cases[] = {
    {"\"null\"", "\"null\"", SPEC_FP(7195948357588979594)},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", SPEC_FP(-6970731678124411036)},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0},
    {"\"int\"", "\"int\"", SPEC_FP(8247732601305521295)},
    {"{\"type\":\"int\"}", "\"int\"", 0},
    {"\"long\"", "\"long\"", SPEC_FP(-3434872931120570953)},
    {"{\"type\":\"long\"}", "\"long\"", 0},
    {"\"float\"", "\"float\"", SPEC_FP(5583340709985441680)},
    {"{\"type\":\"float\"}", "\"float\"", 0},
    {"\"double\"", "\"double\"", SPEC_FP(-8181574048448539266)},
    {"{\"type\":\"double\"}", "\"double\"", 0},
    {"\"bytes\"", "\"bytes\"", SPEC_FP(5746618253357095269)},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0},
    {"\"string\"", "\"string\"", SPEC_FP(-8142146995180207161)},
    {"{\"type\":\"string\"}", "\"string\"", 0},
    {"[  ]", "[]", SPEC_FP(-1241056759729112623)},
    {"[ \"int\"  ]", "[\"int\"]", SPEC_FP(-5232228896498058493)},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]",
     SPEC_FP(5392556393470105090)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}",
     SPEC_FP(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}",
     SPEC_FP(5916914534497305771)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", "
     "\"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}",
     SPEC_FP(-4616218487480524110)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful "
     "info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}",
     SPEC_FP(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}",
     SPEC_FP(-4824392279771201922)},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], "
     "\"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"}]}",
     SPEC_FP(7843277075252814651)},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":true},\n"
     " {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\","
     "\"type\":\"int\"}],\n"
     " \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\","
     "\"type\":\"boolean\"},{\"name\":\"f2\",\"type\":\"int\"}]}",
     SPEC_FP(-4860222112080293046)},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}",
     SPEC_FP(-6342190197741309591)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     SPEC_FP(-4448647247586288245)},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     SPEC_FP(1756455273707447556)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", "
     "\"doc\":\"foo bar\", \"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}",
     SPEC_FP(-3064184465700546786)},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", SPEC_FP(-589620603366471059)},
    {"{ \"values\":\"string\", \"type\":\"map\"}",
     "{\"type\":\"map\",\"values\":\"string\"}", SPEC_FP(-8732877298790414990)},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n"
     " \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", "
     "\"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":"
     "\"value\",\"type\":[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     SPEC_FP(-1759257747318642341)},
    /* beyond the published list: logical types and nested namespaces */
    {"{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\"",
     SPEC_FP(-3434872931120570953)},
    {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a\",\"fields\":["
     "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
     "\"symbols\":[\"X\"]}},{\"name\":\"e2\",\"type\":\"E\"},"
     "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"b.F\","
     "\"size\":2}},{\"name\":\"g\",\"type\":\"b.F\"}]}",
     "{\"name\":\"a.R\",\"type\":\"record\",\"fields\":[{\"name\":\"e\","
     "\"type\":{\"name\":\"a.E\",\"type\":\"enum\",\"symbols\":[\"X\"]}},"
     "{\"name\":\"e2\",\"type\":\"a.E\"},{\"name\":\"f\",\"type\":{\"name\":"
     "\"b.F\",\"type\":\"fixed\",\"size\":2}},{\"name\":\"g\",\"type\":"
     "\"b.F\"}]}",
     0},
};

static void test_canonical_form_spec_cases(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(canon_cases) / sizeof(canon_cases[0]); i++) {
    const struct canon_case *c = &canon_cases[i];
    struct m3b_buf out;
    char errstr[256] = "";
    m3b_buf_init(&out, 4096);
    if (m3b_schema_canonical_form(c->input, strlen(c->input), &out, errstr,
                                  sizeof(errstr)) != M3B_OK)
      fail_msg("case %zu: %s", i, errstr);
    assert_string_equal((const char *)out.data, c->canonical);
    if (c->fingerprint)
      assert_true(m3b_schema_fingerprint(out.data, out.len) == c->fingerprint);
    m3b_buf_cleanup(&out);
  }
}

static void test_canonical_form_rejects(void **state) {
  static const char *const bad[] = {
      "",
      "{",
      "42",
      "{\"name\":\"x\"}",
      "{\"type\":\"record\",\"name\":1}",
      "{\"type\":\"record\",\"name\":\"9x\",\"fields\":[]}",
      "{\"type\":\"record\",\"name\":\"x\"}",
      "{\"type\":\"enum\",\"name\":\"x\",\"symbols\":[1]}",
      "{\"type\":\"fixed\",\"name\":\"x\",\"size\":-1}",
      "{\"type\":\"array\"}",
      "[{\"type\":\"record\",\"name\":\"x\",\"fields\":[]},"
      "{\"type\":\"record\",\"name\":\"x\",\"fields\":[]}]"};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct m3b_buf out;
    char errstr[256] = "";
    m3b_buf_init(&out, 4096);
    assert_int_equal(m3b_schema_canonical_form(bad[i], strlen(bad[i]), &out,
                                               errstr, sizeof(errstr)),
                     M3B_ERR_SCHEMA);
    assert_true(errstr[0] != 0);
    m3b_buf_cleanup(&out);
  }
}

static void test_canonical_form_limit(void **state) {
  struct m3b_buf out;
  const char *s = "{\"type\":\"enum\",\"name\":\"x\",\"symbols\":[\"A\"]}";
  (void)state;
  m3b_buf_init(&out, 8);
  assert_int_equal(m3b_schema_canonical_form(s, strlen(s), &out, NULL, 0),
                   M3B_ERR_LIMIT);
  m3b_buf_cleanup(&out);
}

static void test_fingerprint_empty(void **state) {
  (void)state;
  /* the empty input yields the algorithm's EMPTY constant */
  assert_true(m3b_schema_fingerprint("", 0) == 0xc15d213aa4d7a795ULL);
}

/* Fingerprints of schemas/ computed with fastavro 1.13.1
 * (fastavro.schema.fingerprint(to_parsing_canonical_form(s),
 * "CRC-64-AVRO"), whose hex string is the little-endian byte order). They
 * change whenever a schema's canonical form changes: update them
 * deliberately, together with docs/PROTOCOL.md. */
static void test_builtin_fingerprints(void **state) {
  static const struct {
    const char *name;
    uint64_t fingerprint;
  } expected[] = {
      {"io.m3bridge.v1.DesiredState", 0x5a829642f7d79b2cULL},
      {"io.m3bridge.v1.Heartbeat", 0x1de0d055a06cf734ULL},
      {"io.m3bridge.v1.Registration", 0x9f30dd84db57752cULL},
      {"io.m3bridge.v1.Status", 0xbf13326aa70c3220ULL},
  };
  char errstr[256] = "";
  m3b_schema_registry_t *registry;
  size_t i;
  (void)state;

  registry = m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  if (!registry)
    fail_msg("%s", errstr);
  assert_int_equal(m3b_schema_registry_count(registry), 4);
  for (i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
    uint64_t fingerprint = 0;
    assert_int_equal(
        m3b_schema_registry_current(registry, expected[i].name, &fingerprint),
        M3B_OK);
    if (fingerprint != expected[i].fingerprint)
      fail_msg("%s: fingerprint %016llx", expected[i].name,
               (unsigned long long)fingerprint);
  }
  m3b_schema_registry_destroy(registry);
}

static void test_registry_rejects(void **state) {
  static const struct {
    const char *json;
    m3b_err_t err;
  } cases[] = {
      {"\"int\"", M3B_ERR_SCHEMA}, /* not a record */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":\"Nope\"}]}",
       M3B_ERR_SCHEMA}, /* unknown type */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}",
       M3B_ERR_SCHEMA}, /* duplicate field */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":\"int\",\"default\":\"x\"}]}",
       M3B_ERR_SCHEMA}, /* default of the wrong type */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":[\"null\",\"int\"],\"default\":1}]}",
       M3B_ERR_SCHEMA}, /* union default must fit the first branch */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":[\"int\",\"int\"]}]}",
       M3B_ERR_SCHEMA}, /* duplicate union branch */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}"
       "}]}",
       M3B_ERR_SCHEMA}, /* duplicate symbol */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],"
       "\"default\":\"B\"}}]}",
       M3B_ERR_SCHEMA}, /* enum default not a symbol */
      {"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
       "\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":2},"
       "\"default\":\"abc\"}]}",
       M3B_ERR_SCHEMA}, /* fixed default of the wrong size */
  };
  m3b_schema_registry_t *registry = m3b_schema_registry_new(NULL, 0);
  size_t i;
  (void)state;
  assert_non_null(registry);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char errstr[256] = "";
    m3b_err_t err =
        m3b_schema_registry_add(registry, cases[i].json, strlen(cases[i].json),
                                0, NULL, errstr, sizeof(errstr));
    if (err != cases[i].err)
      fail_msg("case %zu: got %s (%s)", i, m3b_err_name(err), errstr);
    assert_true(errstr[0] != 0);
  }
  assert_int_equal(m3b_schema_registry_count(registry), 0);
  m3b_schema_registry_destroy(registry);
  m3b_schema_registry_destroy(NULL);
}

static void test_registry_recursive_and_current(void **state) {
  const char *pig = "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":"
                    "[{\"name\":\"value\",\"type\":[\"null\",\"int\","
                    "\"PigValue\"]}]}";
  const char *pig2 = "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":"
                     "[{\"name\":\"value\",\"type\":[\"null\",\"int\","
                     "\"PigValue\"]},{\"name\":\"x\",\"type\":\"int\","
                     "\"default\":3}]}";
  m3b_schema_registry_t *registry = m3b_schema_registry_new(NULL, 0);
  uint64_t fp1 = 0;
  uint64_t fp2 = 0;
  uint64_t current = 0;
  (void)state;
  assert_int_equal(m3b_schema_registry_add(registry, pig, strlen(pig),
                                           M3B_SCHEMA_CURRENT, &fp1, NULL, 0),
                   M3B_OK);
  assert_int_equal(
      m3b_schema_registry_add(registry, pig2, strlen(pig2), 0, &fp2, NULL, 0),
      M3B_OK);
  assert_true(fp1 != fp2);
  assert_int_equal(m3b_schema_registry_current(registry, "PigValue", &current),
                   M3B_OK);
  assert_true(current == fp1);
  /* adding a known schema again only moves the current mark */
  assert_int_equal(m3b_schema_registry_add(registry, pig2, strlen(pig2),
                                           M3B_SCHEMA_CURRENT, NULL, NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_schema_registry_count(registry), 2);
  assert_int_equal(m3b_schema_registry_current(registry, "PigValue", &current),
                   M3B_OK);
  assert_true(current == fp2);
  assert_int_equal(m3b_schema_registry_current(registry, "Nope", &current),
                   M3B_ERR_NOT_FOUND);
  m3b_schema_registry_destroy(registry);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_canonical_form_spec_cases),
      cmocka_unit_test(test_canonical_form_rejects),
      cmocka_unit_test(test_canonical_form_limit),
      cmocka_unit_test(test_fingerprint_empty),
      cmocka_unit_test(test_builtin_fingerprints),
      cmocka_unit_test(test_registry_rejects),
      cmocka_unit_test(test_registry_recursive_and_current),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
