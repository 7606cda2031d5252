/*
 * ui_embedded.h - the /ui page, bridge/ui/ui.html, compiled into the
 * library by cmake/embed.cmake (m3b_embed_file) so the listener needs no
 * file at run time.
 */
#ifndef M3B_UI_EMBEDDED_H
#define M3B_UI_EMBEDDED_H

#include <stddef.h>

/* NUL-terminated; m3b__ui_html_len excludes the NUL. */
extern const char m3b__ui_html[];
extern const size_t m3b__ui_html_len;

#endif
