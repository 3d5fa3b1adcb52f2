"""smbprotocol holding a batch oplock or an RWH lease while a second connection forces a break.

Usage: python oplock_break.py HOST PORT USER PASSWORD SHARE DIALECT NAME

smbprotocol 1.17 neither acknowledges breaks nor expects them (its receive thread dies on a
message it did not ask for), so this script registers a catcher for MessageId
0xFFFFFFFFFFFFFFFF and sends the acknowledgments itself, signed by smbprotocol's own code.
Prints one `step: RESULT` line per step and exits 0; any other failure raises:
  batch-granted        A opens NAME asking for a batch oplock: the level granted
  batch-break          B opens NAME: the break A receives (level, signed or not)
  batch-ack            A acknowledges at level II: status and level of the response
  batch-b-granted      B's CREATE completes after the ack: status, level
  cancel-pending       A holds a batch oplock on NAME.c; B opens it, then cancels: status
  lease-granted        A opens NAME.l with an RWH lease (v2 on 3.x): the state granted
  lease-break          B opens NAME.l with another key: current -> new state, ack required
  lease-ack            A acknowledges RH: status and state of the response
  lease-b-granted      B's CREATE completes: status, state
"""

import struct
import sys
import threading
import time
import uuid

BREAK_ID = 0xFFFFFFFFFFFFFFFF


def main(host, port, user, password, share, dialect, name):
    from smbprotocol.connection import Connection, Dialects, Request
    from smbprotocol.create_contexts import SMB2CreateContextRequest
    from smbprotocol.exceptions import SMBResponseException
    from smbprotocol.header import Commands, SMB2HeaderRequest
    from smbprotocol.open import (CreateDisposition, CreateOptions, FileAttributes,
                                  FilePipePrinterAccessMask, ImpersonationLevel, Open,
                                  RequestedOplockLevel, ShareAccess)
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    dialects = {"2.0.2": Dialects.SMB_2_0_2, "2.1": Dialects.SMB_2_1_0,
                "3.0": Dialects.SMB_3_0_0, "3.0.2": Dialects.SMB_3_0_2,
                "3.1.1": Dialects.SMB_3_1_1}
    v2 = dialect.startswith("3")

    class Raw:
        """A request body smbprotocol sends as is (the OPLOCK_BREAK acknowledgments)."""
        COMMAND = Commands.SMB2_OPLOCK_BREAK

        def __init__(self, data):
            self.data = data

        def pack(self):
            return self.data

        def __len__(self):
            return len(self.data)

    def catcher(conn):
        h = SMB2HeaderRequest()
        h["message_id"] = BREAK_ID
        req = Request(h, None, conn, session_id=0)
        conn.outstanding_requests[BREAK_ID] = req
        return req

    def wait_break(req):
        if not req.response_event.wait(20):
            raise RuntimeError("no break notification within 20 s")
        hdr = req.response
        signed = hdr["flags"].get_value() & 0x8 != 0
        return hdr["data"].get_value(), signed

    def connect():
        conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
        conn.connect(dialects[dialect], timeout=30)
        session = Session(conn, user, password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, r"\\%s\%s" % (host, share))
        tree.connect()
        return conn, session, tree

    def opener(tree, fname, level, contexts=None, send=True):
        f = Open(tree, fname)
        out = f.create(ImpersonationLevel.Impersonation,
                       FilePipePrinterAccessMask.GENERIC_READ
                       | FilePipePrinterAccessMask.GENERIC_WRITE,
                       FileAttributes.FILE_ATTRIBUTE_NORMAL,
                       ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE
                       | ShareAccess.FILE_SHARE_DELETE,
                       CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE,
                       create_contexts=contexts, oplock_level=level, send=send)
        return f, out

    def lease_ctx(key, state):
        data = key + struct.pack("<IIQ", state, 0, 0)
        if v2:
            data += b"\0" * 16 + struct.pack("<HH", 0, 0)
        c = SMB2CreateContextRequest()
        c["buffer_name"] = b"RqLs"
        c["buffer_data"] = data
        return c

    def lease_state(contexts):
        for c in contexts or []:
            if hasattr(c, "fields") and "lease_state" in c.fields:
                return c["lease_state"].get_value()
        raise RuntimeError("no lease in the CREATE response")

    def send_create(conn, session, tree, fname, level, contexts=None):
        f, (msg, receive) = opener(tree, fname, level, contexts, send=False)
        req = conn.send(msg, session.session_id, tree.tree_connect_id)
        return f, req, receive

    def ack(conn, session, tree, body):
        req = conn.send(Raw(body), session.session_id, tree.tree_connect_id)
        try:
            resp = conn.receive(req)
            return "ok", resp["data"].get_value(), resp["flags"].get_value() & 0x8 != 0
        except SMBResponseException as e:
            return "%#010x" % e.status, b"", False

    conn_a, sess_a, tree_a = connect()
    conn_b, sess_b, tree_b = connect()

    # Batch oplock, broken to level II by a second open, acknowledged.
    catch = catcher(conn_a)
    a, _ = opener(tree_a, name, RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH)
    print("batch-granted: %#04x" % a.oplock_level)
    b, req, receive = send_create(conn_b, sess_b, tree_b, name,
                                  RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH)
    body, signed = wait_break(catch)
    size, level = struct.unpack_from("<HB", body)
    file_id = body[8:24]
    print("batch-break: size %d level %#04x signed %s same-file %s"
          % (size, level, signed, file_id == a.file_id))
    catch = catcher(conn_a)
    status, data, signed = ack(conn_a, sess_a, tree_a,
                               struct.pack("<HBBI", 24, 0x01, 0, 0) + a.file_id)
    print("batch-ack: %s level %s signed %s"
          % (status, "%#04x" % data[2] if data else "-", signed))
    receive(req)
    print("batch-b-granted: ok %#04x" % b.oplock_level)
    b.close()
    a.close()

    # A CREATE waiting for a break, cancelled (A never acknowledges).
    a, _ = opener(tree_a, name + ".c", RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH)
    b, req, receive = send_create(conn_b, sess_b, tree_b, name + ".c",
                                  RequestedOplockLevel.SMB2_OPLOCK_LEVEL_NONE)
    wait_break(catch)
    catch = catcher(conn_a)
    deadline = time.time() + 20
    while req.async_id is None and time.time() < deadline:
        time.sleep(0.05)
    if req.async_id is None:
        raise RuntimeError("no interim response for the waiting CREATE")
    req.cancel()
    try:
        receive(req)
        print("cancel-pending: ok")
    except SMBResponseException as e:
        print("cancel-pending: %#010x" % e.status)
    a.close()

    if dialect == "2.0.2":
        return
    # RWH lease, broken to RH by another lease key, acknowledged.
    key_a, key_b = b"\x11" * 16, b"\x22" * 16
    a, ctx = opener(tree_a, name + ".l", RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE,
                    [lease_ctx(key_a, 7)])
    print("lease-granted: %#04x level %#04x" % (lease_state(ctx), a.oplock_level))
    b, req, receive = send_create(conn_b, sess_b, tree_b, name + ".l",
                                  RequestedOplockLevel.SMB2_OPLOCK_LEVEL_LEASE,
                                  [lease_ctx(key_b, 7)])
    body, signed = wait_break(catch)
    (size, epoch, flags) = struct.unpack_from("<HHI", body)
    key = body[8:24]
    current, new = struct.unpack_from("<II", body, 24)
    print("lease-break: size %d %#04x -> %#04x ack-required %s signed %s same-key %s epoch-moved %s"
          % (size, current, new, flags & 1 == 1, signed, key == key_a,
             (epoch > 0) == v2))
    status, data, signed = ack(conn_a, sess_a, tree_a,
                               struct.pack("<HHI", 36, 0, 0) + key_a + struct.pack("<IQ", 3, 0))
    print("lease-ack: %s state %s signed %s"
          % (status, "%#04x" % struct.unpack_from("<I", data, 24)[0] if data else "-", signed))
    ctx = receive(req)
    print("lease-b-granted: ok %#04x" % lease_state(ctx))
    b.close()
    a.close()
    conn_a.disconnect()
    conn_b.disconnect()


if __name__ == "__main__":
    main(*sys.argv[1:8])
