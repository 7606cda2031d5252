/*
 * m3b.h - umbrella header of libm3bridge, the library behind
 * m3bridge-publisher (control plane) and m3bridge-listener (data plane).
 */
#ifndef M3B_M3B_H
#define M3B_M3B_H

#include <m3b/buf.h>
#include <m3b/err.h>
#include <m3b/kube.h>
#include <m3b/log.h>
#include <m3b/version.h>

#endif
