/*
 * err.c - names, messages and the retry decision for m3b_err_t, all taken
 * from the single table in <m3b/err.h>.
 */
#include <m3b/err.h>

struct err_info {
  const char *name;
  const char *msg;
  int retriable;
};

static const struct err_info err_infos[] = {
#define M3B__ERR_INFO(name, retriable, msg) {#name, msg, retriable},
    M3B_ERR_TABLE(M3B__ERR_INFO)
#undef M3B__ERR_INFO
};

static const struct err_info *err_lookup(m3b_err_t err) {
  if ((unsigned)err >= (unsigned)M3B_ERR__COUNT)
    return 0;
  return &err_infos[err];
}

const char *m3b_err_str(m3b_err_t err) {
  const struct err_info *info = err_lookup(err);
  return info ? info->msg : "unknown error code";
}

const char *m3b_err_name(m3b_err_t err) {
  const struct err_info *info = err_lookup(err);
  return info ? info->name : "UNKNOWN";
}

int m3b_err_is_retriable(m3b_err_t err) {
  const struct err_info *info = err_lookup(err);
  return info ? info->retriable : 0;
}
