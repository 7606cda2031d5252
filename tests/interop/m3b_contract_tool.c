/*
 * m3b_contract_tool.c - a small command-line view of the wire contract,
 * for interop tests against other implementations (fastavro) and for
 * generating fuzz seeds. Not installed; tests/interop/ runs it.
 *
 *   m3b_contract_tool encode RECORD [opts] < value.json > event.bin
 *   m3b_contract_tool decode [opts]        < event.bin  > result.json
 *   m3b_contract_tool canonical            < schema.avsc
 *   m3b_contract_tool fingerprint RECORD [opts]
 *
 * opts: --schema FILE (an extra known schema), --current FILE (an extra
 * schema that becomes the current one of its record). RECORD is a full
 * name or the name inside io.m3bridge.v1. Values are the codec's JSON
 * model (<m3b/codec.h>). decode prints {"record","fingerprint","value"};
 * every failure prints {"error": NAME, "detail": TEXT} and exits 1.
 *
 * Subcommands are a table; add rows (signing, sealing) without touching
 * the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/codec.h>
#include <m3b/err.h>
#include <m3b/schema.h>

#define INPUT_MAX (64 * 1024 * 1024)
#define NAMESPACE "io.m3bridge.v1"

struct tool {
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  const char *record; /* first positional argument, if any */
  char record_buf[256];
};

static int fail(m3b_err_t err, const char *detail) {
  json_t *out = json_pack("{s:s,s:s}", "error", m3b_err_name(err), "detail",
                          detail ? detail : "");
  if (out) {
    json_dumpf(out, stdout, JSON_COMPACT);
    json_decref(out);
  }
  fputc('\n', stdout);
  fprintf(stderr, "%s: %s\n", m3b_err_name(err), detail ? detail : "");
  return 1;
}

static m3b_err_t read_stream(FILE *in, struct m3b_buf *buf) {
  uint8_t chunk[65536];
  size_t n;
  m3b_err_t err = M3B_OK;
  while (!err && (n = fread(chunk, 1, sizeof(chunk), in)) > 0)
    err = m3b_buf_append(buf, chunk, n);
  if (!err && ferror(in))
    err = M3B_ERR_IO;
  return err;
}

static m3b_err_t add_schema_file(struct tool *tool, const char *path, int flags,
                                 char *errstr, size_t size) {
  struct m3b_buf text;
  FILE *f = fopen(path, "rb");
  m3b_err_t err;
  if (!f) {
    snprintf(errstr, size, "cannot open %s", path);
    return M3B_ERR_IO;
  }
  m3b_buf_init(&text, INPUT_MAX);
  err = read_stream(f, &text);
  fclose(f);
  if (!err)
    err = m3b_schema_registry_add(tool->registry, (const char *)text.data,
                                  text.len, flags, NULL, errstr, size);
  m3b_buf_cleanup(&text);
  return err;
}

/* Parses --schema/--current and at most one positional argument. */
static m3b_err_t tool_open(struct tool *tool, int argc, char **argv,
                           char *errstr, size_t size) {
  int i;
  m3b_err_t err = M3B_OK;

  tool->registry = m3b_schema_registry_new_builtin(errstr, size);
  if (!tool->registry)
    return M3B_ERR_SCHEMA;
  for (i = 1; !err && i < argc; i++) {
    if ((strcmp(argv[i], "--schema") == 0 ||
         strcmp(argv[i], "--current") == 0) &&
        i + 1 < argc) {
      int flags = argv[i][2] == 'c' ? M3B_SCHEMA_CURRENT : 0;
      err = add_schema_file(tool, argv[i + 1], flags, errstr, size);
      i++;
    } else if (argv[i][0] != '-' && !tool->record) {
      tool->record = argv[i];
    } else {
      snprintf(errstr, size, "unexpected argument %s", argv[i]);
      err = M3B_ERR_INVALID_ARG;
    }
  }
  if (!err && tool->record && !strchr(tool->record, '.')) {
    snprintf(tool->record_buf, sizeof(tool->record_buf), "%s.%s", NAMESPACE,
             tool->record);
    tool->record = tool->record_buf;
  }
  if (!err) {
    tool->codec = m3b_codec_new(tool->registry, NULL, errstr, size);
    if (!tool->codec)
      err = M3B_ERR_NOMEM;
  }
  return err;
}

static void tool_close(struct tool *tool) {
  m3b_codec_destroy(tool->codec);
  m3b_schema_registry_destroy(tool->registry);
}

static int cmd_encode(struct tool *tool) {
  struct m3b_buf in;
  struct m3b_buf out;
  json_error_t jerr;
  json_t *value = NULL;
  char errstr[512] = "";
  m3b_err_t err;

  m3b_buf_init(&in, INPUT_MAX);
  m3b_buf_init(&out, INPUT_MAX);
  if (!tool->record) {
    err = M3B_ERR_INVALID_ARG;
    snprintf(errstr, sizeof(errstr), "encode needs a RECORD name");
    goto out;
  }
  err = read_stream(stdin, &in);
  if (err)
    goto out;
  value = json_loadb((const char *)in.data, in.len, JSON_ALLOW_NUL, &jerr);
  if (!value) {
    err = M3B_ERR_INVALID_ARG;
    snprintf(errstr, sizeof(errstr), "input is not JSON: %s", jerr.text);
    goto out;
  }
  err = m3b_codec_encode(tool->codec, tool->record, value, &out, errstr,
                         sizeof(errstr));
  if (err)
    goto out;
  if (fwrite(out.data, 1, out.len, stdout) != out.len)
    err = M3B_ERR_IO;
out:
  json_decref(value);
  m3b_buf_cleanup(&in);
  m3b_buf_cleanup(&out);
  return err ? fail(err, errstr) : 0;
}

static int cmd_decode(struct tool *tool) {
  struct m3b_buf in;
  json_t *value = NULL;
  json_t *result = NULL;
  const char *record = NULL;
  uint64_t fingerprint = 0;
  char hex[17];
  char errstr[512] = "";
  m3b_err_t err;

  m3b_buf_init(&in, INPUT_MAX);
  err = read_stream(stdin, &in);
  if (!err)
    err = m3b_codec_decode(tool->codec, in.data, in.len, &record, &value,
                           errstr, sizeof(errstr));
  if (!err)
    err = m3b_codec_peek(tool->codec, in.data, in.len, &fingerprint, NULL, NULL,
                         0);
  if (err)
    goto out;
  snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fingerprint);
  result = json_pack("{s:s,s:s,s:O}", "record", record, "fingerprint", hex,
                     "value", value);
  if (!result) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  json_dumpf(result, stdout, JSON_COMPACT | JSON_SORT_KEYS);
  fputc('\n', stdout);
out:
  json_decref(result);
  json_decref(value);
  m3b_buf_cleanup(&in);
  return err ? fail(err, errstr) : 0;
}

static int cmd_canonical(struct tool *tool) {
  struct m3b_buf in;
  struct m3b_buf out;
  char errstr[512] = "";
  m3b_err_t err;
  (void)tool;

  m3b_buf_init(&in, INPUT_MAX);
  m3b_buf_init(&out, INPUT_MAX);
  err = read_stream(stdin, &in);
  if (!err)
    err = m3b_schema_canonical_form((const char *)in.data, in.len, &out, errstr,
                                    sizeof(errstr));
  if (!err)
    printf("%016llx %s\n",
           (unsigned long long)m3b_schema_fingerprint(out.data, out.len),
           (const char *)out.data);
  m3b_buf_cleanup(&in);
  m3b_buf_cleanup(&out);
  return err ? fail(err, errstr) : 0;
}

static int cmd_fingerprint(struct tool *tool) {
  uint64_t fingerprint = 0;
  m3b_err_t err;
  if (!tool->record)
    return fail(M3B_ERR_INVALID_ARG, "fingerprint needs a RECORD name");
  err = m3b_schema_registry_current(tool->registry, tool->record, &fingerprint);
  if (err)
    return fail(err, tool->record);
  printf("%016llx\n", (unsigned long long)fingerprint);
  return 0;
}

struct command {
  const char *name;
  const char *usage;
  int (*run)(struct tool *tool);
};

static const struct command commands[] = {
    {"encode", "encode RECORD [--schema F] [--current F] < json > bytes",
     cmd_encode},
    {"decode", "decode [--schema F] [--current F] < bytes > json", cmd_decode},
    {"canonical", "canonical < schema.avsc  (prints fingerprint and form)",
     cmd_canonical},
    {"fingerprint", "fingerprint RECORD [--schema F] [--current F]",
     cmd_fingerprint},
    {NULL, NULL, NULL},
};

static int usage(void) {
  const struct command *c;
  fprintf(stderr, "usage: m3b_contract_tool COMMAND ...\n");
  for (c = commands; c->name; c++)
    fprintf(stderr, "  %s\n", c->usage);
  return 2;
}

int main(int argc, char **argv) {
  const struct command *c;
  struct tool tool;
  char errstr[512] = "";
  m3b_err_t err;
  int rc;

  if (argc < 2)
    return usage();
  for (c = commands; c->name; c++) {
    if (strcmp(c->name, argv[1]) == 0)
      break;
  }
  if (!c->name)
    return usage();
  memset(&tool, 0, sizeof(tool));
  err = tool_open(&tool, argc - 1, argv + 1, errstr, sizeof(errstr));
  rc = err ? fail(err, errstr) : c->run(&tool);
  tool_close(&tool);
  return rc;
}
