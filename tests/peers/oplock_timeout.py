"""A batch oplock whose holder never acknowledges the break: the second open waits for the
server's break timeout, then completes.

Usage: python oplock_timeout.py HOST PORT USER PASSWORD SHARE DIALECT NAME

Prints `holder: <level granted>`, `break: <level offered>` and
`waiter: ok <level granted> after <seconds, 1 decimal>` and exits 0; any other failure raises.
"""

import sys
import time
import uuid

BREAK_ID = 0xFFFFFFFFFFFFFFFF


def main(host, port, user, password, share, dialect, name):
    from smbprotocol.connection import Connection, Dialects, Request
    from smbprotocol.header import SMB2HeaderRequest
    from smbprotocol.open import (CreateDisposition, CreateOptions, FileAttributes,
                                  FilePipePrinterAccessMask, ImpersonationLevel, Open,
                                  RequestedOplockLevel, ShareAccess)
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    dialects = {"2.0.2": Dialects.SMB_2_0_2, "2.1": Dialects.SMB_2_1_0,
                "3.0": Dialects.SMB_3_0_0, "3.0.2": Dialects.SMB_3_0_2,
                "3.1.1": Dialects.SMB_3_1_1}

    def connect():
        conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
        conn.connect(dialects[dialect], timeout=30)
        session = Session(conn, user, password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, r"\\%s\%s" % (host, share))
        tree.connect()
        return conn, session, tree

    def opener(tree, level, send=True):
        f = Open(tree, name)
        out = f.create(ImpersonationLevel.Impersonation,
                       FilePipePrinterAccessMask.GENERIC_READ,
                       FileAttributes.FILE_ATTRIBUTE_NORMAL,
                       ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                       CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE,
                       oplock_level=level, send=send)
        return f, out

    conn_a, _, tree_a = connect()
    conn_b, sess_b, tree_b = connect()
    # smbprotocol 1.17 does not expect break notifications: catch the one it gets.
    h = SMB2HeaderRequest()
    h["message_id"] = BREAK_ID
    catch = Request(h, None, conn_a, session_id=0)
    conn_a.outstanding_requests[BREAK_ID] = catch
    a, _ = opener(tree_a, RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH)
    print("holder: %#04x" % a.oplock_level)
    b, (msg, receive) = opener(tree_b, RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH, send=False)
    started = time.time()
    req = conn_b.send(msg, sess_b.session_id, tree_b.tree_connect_id)
    if not catch.response_event.wait(20):
        raise RuntimeError("no break notification")
    print("break: %#04x" % catch.response["data"].get_value()[2])
    receive(req)
    print("waiter: ok %#04x after %.1f" % (b.oplock_level, time.time() - started))


if __name__ == "__main__":
    main(*sys.argv[1:8])
