/*
 * manifest.h - reading Kubernetes manifests (YAML or JSON files, directories,
 * stdin) into JSON objects for m3bridge-publisher.
 *
 * A manifest set holds documents in the order they were read; each is a
 * jansson object plus where it came from (path and 1-based line). Only the
 * shape is checked here (every document is a mapping, keys are unique, the
 * document fits the limits); apiVersion, kind and metadata are another
 * module's business (objkey.h).
 *
 * Input:
 *   - a file: .json files are parsed as JSON (jansson; several concatenated
 *     objects are allowed), .yaml and .yml files as YAML (libyaml); any other
 *     name, and streams, are JSON when the first non-blank byte is '{' and
 *     YAML otherwise, like kubectl.
 *   - a directory: every regular *.yaml, *.yml and *.json file directly in
 *     it (not recursive, like kubectl without -R), in byte order of the
 *     names. A directory with none is M3B_ERR_NOT_FOUND.
 *   - YAML streams may hold several documents (---); empty and null
 *     documents are skipped. A document whose kind is "List" is replaced by
 *     the mappings of its items array (nested Lists are refused).
 *
 * YAML to JSON follows what kubectl does (sigs.k8s.io/yaml on go-yaml v2,
 * YAML 1.1 resolution). For plain (unquoted, untagged) scalars:
 *   - "", ~, null, Null, NULL                          -> null
 *   - true/True/TRUE, yes/Yes/YES, y/Y, on/On/ON         -> true
 *   - false/False/FALSE, no/No/NO, n/N, off/Off/OFF      -> false
 *   - integers as Go's ParseInt(s, 0, 64) reads them after removing '_':
 *     [+-] decimal, 0x hex, 0o and leading-0 octal (0644 = 420), 0b binary
 *     -> JSON integer; out of int64 range -> M3B_ERR_BAD_MANIFEST
 *   - floats [+-](.d+|d+(.d*)?)([eE][+-]?d+)? -> number; an integral value
 *     within int64 becomes an integer (1e3 -> 1000, 2.0 -> 2) because that is
 *     what kubectl sends; others are reals. A float too large for a double
 *     stays a string (as in go-yaml).
 *   - .inf, -.inf, .nan (any case variant) -> M3B_ERR_BAD_MANIFEST: not JSON
 *   - anything else, timestamps included -> string
 * Quoted ('..', "..") and block (|, >) scalars and scalars tagged !!str or !
 * are always strings. !!map and !!seq are accepted on their node kinds; any
 * other tag is refused. Keys are converted as kubectl does: strings stay,
 * integers become their decimal text (80 -> "80", 0x10 -> "16"), booleans
 * "true"/"false"; null, float and collection keys are refused, as are
 * duplicate keys (after conversion) and merge keys (<<). Anchors and aliases
 * are supported: an alias is a deep copy of its anchored node, and alias
 * copies in one document may add at most max_doc_bytes nodes in total
 * (M3B_ERR_LIMIT otherwise), which stops "billion laughs" inputs. Strings
 * containing NUL are refused. JSON input is read the same way: duplicate
 * keys refused, integral reals within int64 become integers.
 *
 * Errors: M3B_ERR_BAD_MANIFEST for content (invalid YAML, JSON or UTF-8, a
 * document that is not a mapping, the rules above), M3B_ERR_IO for files or
 * directories that cannot be read, M3B_ERR_LIMIT for a document whose
 * compact JSON is larger than max_doc_bytes, more than max_docs documents in
 * the set, nesting deeper than M3B_MANIFEST_MAX_DEPTH, or an input larger
 * than M3B_MANIFEST_INPUT_FACTOR * max_doc_bytes * max_docs. Messages start
 * "path:line: " wherever a line is known. A failed read leaves the set as
 * it was before the call.
 */
#ifndef M3B_MANIFEST_H
#define M3B_MANIFEST_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest nesting of mappings and sequences in one document. */
#define M3B_MANIFEST_MAX_DEPTH 256
/* One file or stream may be at most this many times max_doc_bytes *
 * max_docs bytes (YAML indentation and comments make source larger than
 * compact JSON). */
#define M3B_MANIFEST_INPUT_FACTOR 8

typedef struct m3b_manifest_set m3b_manifest_set_t;

/* An empty set that accepts documents of at most max_doc_bytes bytes of
 * compact JSON and at most max_docs documents in total (both > 0). NULL
 * only when out of memory. */
m3b_manifest_set_t *m3b_manifest_set_new(size_t max_doc_bytes, size_t max_docs);

/* Frees the set and its documents; NULL is a no-op. */
void m3b_manifest_set_destroy(m3b_manifest_set_t *set);

/* Appends the documents of a file or a directory (path borrowed; see the
 * top of this file). On error nothing is appended and errstr says why. */
m3b_err_t m3b_manifest_read_path(m3b_manifest_set_t *set, const char *path,
                                 char *errstr, size_t errstr_size);

/* Appends the documents read from stream (borrowed; read to its end, not
 * closed) to the set, naming them name (borrowed, copied; e.g. "-" for
 * stdin) in messages and m3b_manifest_get. JSON or YAML by the first
 * non-blank byte. On error nothing is appended. */
m3b_err_t m3b_manifest_read_stream(m3b_manifest_set_t *set, FILE *stream,
                                   const char *name, char *errstr,
                                   size_t errstr_size);

/* Number of documents in the set. */
size_t m3b_manifest_count(const m3b_manifest_set_t *set);

/* Document i (< m3b_manifest_count; asserted). Each out parameter may be
 * NULL. *json_out is a JSON object and *path_out a string, both borrowed
 * from the set (json_incref to keep the object longer); *line_out is the
 * 1-based line where the document's mapping starts (for List items: where
 * the item starts in YAML, where the List starts in JSON). */
void m3b_manifest_get(const m3b_manifest_set_t *set, size_t i,
                      json_t **json_out, const char **path_out,
                      size_t *line_out);

#ifdef __cplusplus
}
#endif

#endif
