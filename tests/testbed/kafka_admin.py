#!/usr/bin/env python3
"""kafka_admin.py - provisions the test bed's Kafka identities.

Creates the SCRAM-SHA-512 users and the ACLs of DESIGN.md section 4 over the
PLAINTEXT listener (ANONYMOUS is a super user there, on loopback only):

  m3-control            the control plane: writes and reads every m3.* topic,
                        creates topics, runs transactions, reads status
  m3-listener-<plane>   a data plane: reads m3.<plane>.desired with group
                        m3bridge-<plane>, writes m3.<plane>.status and
                        m3.<plane>.dlq and m3.registry; nothing else
  admin                 super user for SASL_SSL tests

Passwords are read from files (never from the command line) and never printed.
"""
import argparse
import sys

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType,
                                   ResourceType, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialUpsertion)

ALLOW = AclPermissionType.ALLOW
LIT = ResourcePatternType.LITERAL
PRE = ResourcePatternType.PREFIXED


def read_secret(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip().encode()


def acl(principal, rtype, name, pattern, ops):
    return [AclBinding(rtype, name, pattern, "User:" + principal, "*", op, ALLOW)
            for op in ops]


def control_acls(user):
    A = AclOperation
    return (acl(user, ResourceType.TOPIC, "m3.", PRE,
                [A.WRITE, A.READ, A.DESCRIBE, A.CREATE, A.DESCRIBE_CONFIGS,
                 A.ALTER_CONFIGS])
            + acl(user, ResourceType.GROUP, "m3bridge-publisher", PRE,
                  [A.READ, A.DESCRIBE])
            + acl(user, ResourceType.GROUP, "m3bridge-", PRE, [A.DESCRIBE])
            + acl(user, ResourceType.TRANSACTIONAL_ID, "m3bridge-publisher", PRE,
                  [A.WRITE, A.DESCRIBE]))


def listener_acls(plane, user):
    A = AclOperation
    return (acl(user, ResourceType.TOPIC, f"m3.{plane}.desired", LIT,
                [A.READ, A.DESCRIBE])
            + acl(user, ResourceType.TOPIC, f"m3.{plane}.status", LIT,
                  [A.WRITE, A.DESCRIBE])
            + acl(user, ResourceType.TOPIC, f"m3.{plane}.dlq", LIT,
                  [A.WRITE, A.DESCRIBE])
            + acl(user, ResourceType.TOPIC, "m3.registry", LIT,
                  [A.WRITE, A.DESCRIBE])
            + acl(user, ResourceType.GROUP, f"m3bridge-{plane}", LIT,
                  [A.READ, A.DESCRIBE]))


def wait_all(futures, what):
    failed = 0
    for key, fut in futures.items():
        try:
            fut.result(timeout=30)
        except Exception as e:  # noqa: BLE001 - report every failure
            print(f"kafka_admin: {what} {key}: {e}", file=sys.stderr)
            failed += 1
    if failed:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--admin", required=True, help="password file of 'admin'")
    ap.add_argument("--control", required=True,
                    help="password file of 'm3-control'")
    ap.add_argument("--plane", action="append", default=[],
                    metavar="NAME=PASSWORD_FILE")
    args = ap.parse_args()

    client = AdminClient({"bootstrap.servers": args.bootstrap})
    users = [("admin", read_secret(args.admin)),
             ("m3-control", read_secret(args.control))]
    acls = control_acls("m3-control")
    for spec in args.plane:
        plane, _, path = spec.partition("=")
        user = f"m3-listener-{plane}"
        users.append((user, read_secret(path)))
        acls += listener_acls(plane, user)

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts = [UserScramCredentialUpsertion(u, info, pw) for u, pw in users]
    wait_all(client.alter_user_scram_credentials(upserts), "SCRAM user")
    wait_all(client.create_acls(acls), "ACL")
    print(f"kafka_admin: {len(users)} SCRAM users, {len(acls)} ACLs",
          file=sys.stderr)


if __name__ == "__main__":
    main()
