"""smbprotocol's byte-range LOCK against a server, from two connections.

Usage: python byte_range_lock.py HOST PORT USER PASSWORD SHARE DIALECT NAME

A and B open NAME (A writes 100 bytes). Prints one `step: RESULT` line per step, where RESULT is
`ok` or the NTSTATUS name of the error, and exits 0; any other failure raises:
  a-exclusive      A locks [0,10) exclusively, fail-immediately
  b-exclusive      B asks for [5,10) exclusively, fail-immediately (conflict)
  b-read, b-write  B reads / writes [0,5) under A's lock
  b-shared-20      B takes a shared lock on [20,10)
  a-shared-25      A takes a shared lock on [25,10) (shared locks coexist)
  b-wait           B waits for [0,10) (no fail-immediately) while A unlocks: granted
  a-unlock-bad     A unlocks a range it does not hold
  b-cancel         B waits for [40,5) held by A, then cancels (smbprotocol signs the CANCEL)
"""

import sys
import threading
import time
import uuid


def main(host, port, user, password, share, dialect, name):
    from smbprotocol.connection import Connection, Dialects
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.open import (CreateDisposition, CreateOptions, FileAttributes,
                                  FilePipePrinterAccessMask, ImpersonationLevel, LockFlags,
                                  Open, ShareAccess, SMB2LockElement)
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
        f = Open(tree, name)
        f.create(ImpersonationLevel.Impersonation,
                 FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
                 FileAttributes.FILE_ATTRIBUTE_NORMAL,
                 ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                 CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
        return conn, session, tree, f

    def element(offset, length, flags):
        e = SMB2LockElement()
        e["offset"] = offset
        e["length"] = length
        e["flags"] = flags
        return e

    ex = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK
    sh = LockFlags.SMB2_LOCKFLAG_SHARED_LOCK
    fi = LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    un = LockFlags.SMB2_LOCKFLAG_UNLOCK

    def step(label, fn):
        try:
            fn()
            print("%s: ok" % label)
        except SMBResponseException as e:
            print("%s: %#010x" % (label, e.status))

    conn_a, _, _, a = connect()
    a.write(b"x" * 100, 0)
    conn_b, sess_b, tree_b, b = connect()

    step("a-exclusive", lambda: a.lock([element(0, 10, ex | fi)]))
    step("b-exclusive", lambda: b.lock([element(5, 10, ex | fi)]))
    step("b-read", lambda: b.read(0, 5))
    step("b-write", lambda: b.write(b"y" * 5, 0))
    step("b-shared-20", lambda: b.lock([element(20, 10, sh | fi)]))
    step("a-shared-25", lambda: a.lock([element(25, 10, sh | fi)]))

    # B waits; A releases; B's request completes.
    req, receive = b.lock([element(0, 10, ex)], send=False)
    request = conn_b.send(req, sess_b.session_id, tree_b.tree_connect_id)
    result = []

    def wait_b():
        try:
            receive(request, wait=True)
            result.append("ok")
        except SMBResponseException as e:
            result.append("%#010x" % e.status)
        except Exception as e:  # Cancelled and others
            result.append(type(e).__name__)

    t = threading.Thread(target=wait_b, daemon=True)
    t.start()
    time.sleep(1)
    pending_before_unlock = t.is_alive()
    a.lock([element(0, 10, un)])
    t.join(30)
    print("b-wait: %s (pending before unlock: %s)" % (result[0] if result else "no answer",
                                                      pending_before_unlock))

    step("a-unlock-bad", lambda: a.lock([element(0, 3, un)]))

    # B waits for a range A holds, then cancels.
    a.lock([element(40, 5, ex | fi)])
    req, receive = b.lock([element(40, 5, ex)], send=False)
    request = conn_b.send(req, sess_b.session_id, tree_b.tree_connect_id)
    result = []
    t = threading.Thread(target=wait_b, daemon=True)
    t.start()
    time.sleep(1)
    request.cancel()
    t.join(30)
    print("b-cancel: %s" % (result[0] if result else "no answer"))

    a.close()
    b.close()
    conn_a.disconnect()
    conn_b.disconnect()


if __name__ == "__main__":
    main(*sys.argv[1:8])
