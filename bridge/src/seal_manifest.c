/*
 * seal_manifest.c - the Secret manifest walks of <m3b/seal_manifest.h>.
 *
 * Each walk builds the new `data` object aside and swaps it in only when
 * every value succeeded, so a failure leaves the manifest as it was. Every
 * plaintext that passes through here (decoded base64, stringData values,
 * unsealed bytes) lives in an m3b_buf that is wiped on every path, and the
 * jansson strings that held plaintext are wiped before they are released.
 */
#include <m3b/seal_manifest.h>

#include <string.h>

#include <openssl/crypto.h>

#include <m3b/buf.h>

#include "b64.h"
#include "keyfile.h"

/* Largest text form of a sealed value. */
#define SEALED_TEXT_MAX                                                        \
  (sizeof(M3B_SEAL_TEXT_PREFIX) +                                              \
   ((M3B_SEAL_MAX_PLAINTEXT + M3B_SEAL_OVERHEAD) / 3 + 1) * 4)

/* Zeroes the bytes of one jansson string in place. */
static void wipe_string(json_t *str) {
  if (json_is_string(str))
    OPENSSL_cleanse((char *)json_string_value(str), json_string_length(str));
}

/* Zeroes every string value of obj (an object, or anything else: no-op). */
static void wipe_object_strings(json_t *obj) {
  const char *name;
  json_t *value;
  if (!json_is_object(obj))
    return;
  json_object_foreach(obj, name, value) {
    wipe_string(value);
  }
}

void m3b_seal_manifest_wipe(json_t *manifest) {
  if (!json_is_object(manifest))
    return;
  wipe_object_strings(json_object_get(manifest, "data"));
  wipe_object_strings(json_object_get(manifest, "stringData"));
}

/* Checks that manifest is a Secret whose field (data or stringData) is
 * absent or an object of strings; *field_out is it or NULL. */
static m3b_err_t secret_field(json_t *manifest, const char *field,
                              json_t **field_out, char *errstr,
                              size_t errstr_size) {
  const char *name;
  json_t *value;
  json_t *obj;
  json_t *kind = json_object_get(manifest, "kind");

  *field_out = NULL;
  if (!json_is_string(kind) || strcmp(json_string_value(kind), "Secret") != 0) {
    m3b__errstr(errstr, errstr_size, "manifest is not a Secret");
    return M3B_ERR_BAD_MANIFEST;
  }
  obj = json_object_get(manifest, field);
  if (!obj)
    return M3B_OK;
  if (!json_is_object(obj)) {
    m3b__errstr(errstr, errstr_size, "Secret %s is not an object", field);
    return M3B_ERR_BAD_MANIFEST;
  }
  json_object_foreach(obj, name, value) {
    if (!json_is_string(value)) {
      m3b__errstr(errstr, errstr_size, "Secret %s.%.100s is not a string",
                  field, name);
      return M3B_ERR_BAD_MANIFEST;
    }
  }
  *field_out = obj;
  return M3B_OK;
}

/* Seals plain[0..len) and sets sealed[name] to its text form. */
static m3b_err_t seal_one(json_t *sealed, const char *name,
                          const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                          const char *object_key, const uint8_t *plain,
                          size_t len) {
  struct m3b_buf text;
  json_t *str;
  m3b_err_t err;

  m3b_buf_init(&text, SEALED_TEXT_MAX);
  err = m3b_seal_text(pub, plain, len, object_key, strlen(object_key), &text);
  if (err)
    goto out;
  str = json_stringn((const char *)text.data, text.len);
  if (!str || json_object_set_new(sealed, name, str) != 0) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
out:
  m3b_buf_cleanup(&text);
  return err;
}

m3b_err_t m3b_seal_manifest(json_t *manifest,
                            const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                            const char *object_key, char *errstr,
                            size_t errstr_size) {
  json_t *data = NULL;
  json_t *string_data = NULL;
  json_t *sealed = NULL;
  struct m3b_buf plain;
  const char *name;
  json_t *value;
  m3b_err_t err;

  m3b_buf_init(&plain, M3B_SEAL_MAX_PLAINTEXT);
  err = secret_field(manifest, "data", &data, errstr, errstr_size);
  if (err)
    goto out;
  err = secret_field(manifest, "stringData", &string_data, errstr, errstr_size);
  if (err)
    goto out;
  sealed = json_object();
  if (!sealed) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  json_object_foreach(data, name, value) {
    const char *text = json_string_value(value);
    size_t text_len = json_string_length(value);

    if (m3b_seal_is_text(text, text_len)) {
      /* a copy: the original is wiped with the other data values below */
      if (json_object_set_new(sealed, name, json_stringn(text, text_len)) !=
          0) {
        err = M3B_ERR_NOMEM;
        goto out;
      }
      continue;
    }
    m3b_buf_cleanup_secret(&plain);
    err = m3b__b64_decode(text, text_len, &plain);
    if (err == M3B_ERR_DECODE) {
      m3b__errstr(errstr, errstr_size, "Secret data.%.100s is not base64",
                  name);
      err = M3B_ERR_BAD_MANIFEST;
    }
    if (err)
      goto out;
    err = seal_one(sealed, name, pub, object_key, plain.data, plain.len);
    if (err) {
      m3b__errstr(errstr, errstr_size, "Secret data.%.100s: %s", name,
                  m3b_err_str(err));
      goto out;
    }
  }
  json_object_foreach(string_data, name, value) {
    err = seal_one(sealed, name, pub, object_key,
                   (const uint8_t *)json_string_value(value),
                   json_string_length(value));
    if (err) {
      m3b__errstr(errstr, errstr_size, "Secret stringData.%.100s: %s", name,
                  m3b_err_str(err));
      goto out;
    }
  }
  /* success: the plaintext strings are wiped, then released */
  m3b_seal_manifest_wipe(manifest);
  if (json_object_set_new(manifest, "data", sealed) != 0) {
    sealed = NULL; /* json_object_set_new released it */
    err = M3B_ERR_NOMEM;
    goto out;
  }
  sealed = NULL;
  json_object_del(manifest, "stringData");
out:
  json_decref(sealed);
  m3b_buf_cleanup_secret(&plain);
  return err;
}

m3b_err_t m3b_unseal_manifest(json_t *manifest, const m3b_seal_key_t *key,
                              const char *object_key, char *errstr,
                              size_t errstr_size) {
  json_t *data = NULL;
  json_t *string_data = NULL;
  json_t *opened = NULL;
  struct m3b_buf plain;
  struct m3b_buf encoded;
  const char *name;
  json_t *value;
  json_t *str;
  m3b_err_t err;

  m3b_buf_init(&plain, M3B_SEAL_MAX_PLAINTEXT);
  m3b_buf_init(&encoded, SEALED_TEXT_MAX);
  err = secret_field(manifest, "data", &data, errstr, errstr_size);
  if (err)
    goto out;
  err = secret_field(manifest, "stringData", &string_data, errstr, errstr_size);
  if (err)
    goto out;
  if (string_data && json_object_size(string_data) > 0) {
    m3b__errstr(errstr, errstr_size,
                "Secret has stringData: plaintext must never be sent");
    err = M3B_ERR_SEAL_MALFORMED;
    goto out;
  }
  opened = json_object();
  if (!opened) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  json_object_foreach(data, name, value) {
    const char *text = json_string_value(value);
    size_t text_len = json_string_length(value);

    if (!m3b_seal_is_text(text, text_len)) {
      m3b__errstr(errstr, errstr_size, "Secret data.%.100s is not sealed",
                  name);
      err = M3B_ERR_SEAL_MALFORMED;
      goto out;
    }
    m3b_buf_cleanup_secret(&plain);
    m3b_buf_cleanup_secret(&encoded);
    err = m3b_unseal_text(key, text, text_len, object_key, strlen(object_key),
                          &plain);
    if (!err)
      err = m3b__b64_encode(plain.data, plain.len, &encoded);
    if (err) {
      m3b__errstr(errstr, errstr_size, "Secret data.%.100s: %s", name,
                  m3b_err_str(err));
      goto out;
    }
    str = json_stringn((const char *)encoded.data, encoded.len);
    if (!str || json_object_set_new(opened, name, str) != 0) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
  }
  if (json_object_set_new(manifest, "data", opened) != 0) {
    opened = NULL; /* json_object_set_new released it */
    err = M3B_ERR_NOMEM;
    goto out;
  }
  opened = NULL;
  json_object_del(manifest, "stringData");
out:
  wipe_object_strings(opened);
  json_decref(opened);
  m3b_buf_cleanup_secret(&encoded);
  m3b_buf_cleanup_secret(&plain);
  return err;
}
