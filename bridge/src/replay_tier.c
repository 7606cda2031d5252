/*
 * replay_tier.c - the restore order of <m3b/replay.h>: which tier a kind
 * belongs to, from one table of (group, kind). What an object depends on
 * must exist first: its Namespace (and, for a custom resource, its CRD),
 * the ServiceAccounts and quotas workloads are admitted against, the
 * ConfigMaps, Secrets and claims they mount, the Services routes point to.
 * A kind the table does not name is a custom resource or something rare:
 * last, when everything it could refer to exists.
 */
#include <m3b/replay.h>

#include <string.h>

struct tier_kind {
  const char *group;
  const char *kind; /* NULL: every kind of the group */
  enum m3b_tier tier;
};

static const struct tier_kind table[] = {
    {"", "Namespace", M3B_TIER_NAMESPACES},
    {"apiextensions.k8s.io", "CustomResourceDefinition", M3B_TIER_NAMESPACES},
    {"", "ServiceAccount", M3B_TIER_RBAC},
    {"", "ResourceQuota", M3B_TIER_RBAC},
    {"", "LimitRange", M3B_TIER_RBAC},
    {"rbac.authorization.k8s.io", NULL, M3B_TIER_RBAC},
    {"scheduling.k8s.io", "PriorityClass", M3B_TIER_RBAC},
    {"", "ConfigMap", M3B_TIER_CONFIG},
    {"", "Secret", M3B_TIER_CONFIG},
    {"", "PersistentVolume", M3B_TIER_STORAGE},
    {"", "PersistentVolumeClaim", M3B_TIER_STORAGE},
    {"storage.k8s.io", NULL, M3B_TIER_STORAGE},
    {"snapshot.storage.k8s.io", NULL, M3B_TIER_STORAGE},
    {"", "Service", M3B_TIER_SERVICES},
    {"", "Endpoints", M3B_TIER_SERVICES},
    {"discovery.k8s.io", "EndpointSlice", M3B_TIER_SERVICES},
    {"apps", NULL, M3B_TIER_WORKLOADS},
    {"batch", NULL, M3B_TIER_WORKLOADS},
    {"", "Pod", M3B_TIER_WORKLOADS},
    {"", "ReplicationController", M3B_TIER_WORKLOADS},
    {"gateway.networking.k8s.io", "GatewayClass", M3B_TIER_GATEWAYS},
    {"gateway.networking.k8s.io", "Gateway", M3B_TIER_GATEWAYS},
    {"gateway.networking.k8s.io", "ListenerSet", M3B_TIER_GATEWAYS},
    {"networking.k8s.io", "IngressClass", M3B_TIER_GATEWAYS},
    {"gateway.networking.k8s.io", "HTTPRoute", M3B_TIER_ROUTES},
    {"gateway.networking.k8s.io", "GRPCRoute", M3B_TIER_ROUTES},
    {"gateway.networking.k8s.io", "TLSRoute", M3B_TIER_ROUTES},
    {"gateway.networking.k8s.io", "TCPRoute", M3B_TIER_ROUTES},
    {"gateway.networking.k8s.io", "UDPRoute", M3B_TIER_ROUTES},
    {"gateway.networking.k8s.io", "ReferenceGrant", M3B_TIER_ROUTES},
    {"networking.k8s.io", "Ingress", M3B_TIER_ROUTES},
};

enum m3b_tier m3b_tier_of(const char *group, const char *kind) {
  size_t i;
  if (!group || !kind)
    return M3B_TIER_OTHER;
  /* an exact (group, kind) row wins over a whole-group row */
  for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].kind && strcmp(table[i].group, group) == 0 &&
        strcmp(table[i].kind, kind) == 0)
      return table[i].tier;
  for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (!table[i].kind && strcmp(table[i].group, group) == 0)
      return table[i].tier;
  return M3B_TIER_OTHER;
}

const char *m3b_tier_name(enum m3b_tier tier) {
  static const char *const names[M3B_TIER__COUNT] = {
      "namespaces", "rbac",     "config", "storage", "services",
      "workloads",  "gateways", "routes", "other"};
  if ((int)tier < 0 || tier >= M3B_TIER__COUNT)
    return "?";
  return names[tier];
}
