-- unixsock.lua: Wireshark dissector for unixsock captures (Unix domain socket
-- messages recorded by the unixsock eBPF capture tool).
--
-- Record layout: docs/link-header.md (the same page src/link-header.ts is
-- tested against). Stages, in order: record header -> stream view -> sub-dissector.
--
-- Stream and seqpacket payloads are handed to Wireshark through a *synthetic*
-- IPv4 + TCP (stream) or UDP (dgram, seqpacket) header: per-connection ports,
-- running sequence numbers and the fixed addresses 127.85.0.1 (client) and
-- 127.85.0.2 (server). That is what gives TCP reassembly, Follow TCP Stream,
-- tcp.stream, conversation statistics and filters, and port-based protocols
-- (HTTP, X11, PostgreSQL, Decode As). The tree names that view "Stream view
-- (synthetic)": these are not network packets.
--
-- SPDX-License-Identifier: GPL-2.0-or-later

local unixsock = Proto("unixsock", "Unix Socket Message")

local VERSION = 1
local FIXED_LEN = 104

local SOCK_TYPES = { [1] = "stream", [2] = "dgram", [5] = "seqpacket" }
local STRATEGIES = { [1] = "fentry", [2] = "kprobe", [3] = "sock_send_length", [4] = "syscalls" }
local SYSCALLS = { [1] = "write", [20] = "writev", [44] = "sendto", [46] = "sendmsg", [307] = "sendmmsg",
  [328] = "pwritev2", [40] = "sendfile", [275] = "splice", [278] = "vmsplice", [426] = "io_uring_enter" }
local TLV_NAMES = { [1] = "Local path", [2] = "Peer path", [3] = "Destination path", [4] = "SCM_RIGHTS",
  [5] = "SCM_CREDENTIALS", [6] = "Other control message" }

local F = {
  version = ProtoField.uint8("unixsock.version", "Header version"),
  type = ProtoField.uint8("unixsock.type", "Socket type", base.DEC, SOCK_TYPES),
  hdr_len = ProtoField.uint16("unixsock.hdr_len", "Header length"),
  flags = ProtoField.uint16("unixsock.flags", "Flags", base.HEX),
  flags_truncated = ProtoField.bool("unixsock.flags.truncated", "Truncated (snap length)", 16, nil, 0x0001),
  flags_no_payload = ProtoField.bool("unixsock.flags.no_payload", "Payload not readable", 16, nil, 0x0002),
  flags_has_ctrl = ProtoField.bool("unixsock.flags.ancillary", "Ancillary data", 16, nil, 0x0004),
  flags_ctrl_trunc = ProtoField.bool("unixsock.flags.ancillary_truncated", "Ancillary data truncated", 16, nil, 0x0008),
  flags_peer_guess = ProtoField.bool("unixsock.flags.peer_from_creator", "Peer pid from socket creator", 16, nil, 0x0010),
  flags_lost = ProtoField.bool("unixsock.flags.lost", "Bytes lost (ring buffer full)", 16, nil, 0x0020),
  flags_more = ProtoField.bool("unixsock.flags.more", "Message continues in next record", 16, nil, 0x0040),
  flags_ctrl_bad = ProtoField.bool("unixsock.flags.ancillary_malformed", "Ancillary data malformed", 16, nil, 0x0080),
  strategy = ProtoField.uint8("unixsock.strategy", "Attach strategy", base.DEC, STRATEGIES),
  pid = ProtoField.uint32("unixsock.pid", "Process ID"),
  tid = ProtoField.uint32("unixsock.tid", "Thread ID"),
  uid = ProtoField.uint32("unixsock.uid", "User ID"),
  gid = ProtoField.uint32("unixsock.gid", "Group ID"),
  peer_pid = ProtoField.uint32("unixsock.peer.pid", "Peer process ID"),
  syscall = ProtoField.uint32("unixsock.syscall", "System call", base.DEC, SYSCALLS),
  inode = ProtoField.uint64("unixsock.inode", "Socket inode"),
  peer_inode = ProtoField.uint64("unixsock.peer.inode", "Peer socket inode"),
  len = ProtoField.uint32("unixsock.len", "Message length"),
  offset = ProtoField.uint32("unixsock.offset", "Offset in message"),
  caplen = ProtoField.uint32("unixsock.caplen", "Captured payload length"),
  path_dev = ProtoField.uint32("unixsock.path.dev", "Socket file device", base.HEX),
  path_inode = ProtoField.uint64("unixsock.path.inode", "Socket file inode"),
  comm = ProtoField.string("unixsock.comm", "Command"),
  peer_comm = ProtoField.string("unixsock.peer.comm", "Peer command"),
  path = ProtoField.string("unixsock.path", "Socket path"),
  local_path = ProtoField.string("unixsock.local.path", "Local path"),
  peer_path = ProtoField.string("unixsock.peer.path", "Peer path"),
  dest_path = ProtoField.string("unixsock.dest.path", "Destination path"),
  abstract = ProtoField.bool("unixsock.path.abstract", "Abstract namespace"),
  tlv = ProtoField.uint16("unixsock.tlv.type", "Option", base.DEC, TLV_NAMES),
  tlv_len = ProtoField.uint16("unixsock.tlv.len", "Option length"),
  rights_count = ProtoField.uint32("unixsock.scm.rights.count", "File descriptors passed"),
  rights_fd = ProtoField.int32("unixsock.scm.rights.fd", "File descriptor"),
  creds_pid = ProtoField.int32("unixsock.scm.creds.pid", "Credentials pid"),
  creds_uid = ProtoField.uint32("unixsock.scm.creds.uid", "Credentials uid"),
  creds_gid = ProtoField.uint32("unixsock.scm.creds.gid", "Credentials gid"),
  cmsg_level = ProtoField.int32("unixsock.cmsg.level", "Control message level"),
  cmsg_type = ProtoField.int32("unixsock.cmsg.type", "Control message type"),
  cmsg_data = ProtoField.bytes("unixsock.cmsg.data", "Control message data"),
  from = ProtoField.string("unixsock.from", "From (command pid)"),
  to = ProtoField.string("unixsock.to", "To (peer command pid)"),
  stream = ProtoField.uint32("unixsock.stream", "Connection index"),
  view = ProtoField.string("unixsock.view", "Stream view (synthetic)"),
  protocol = ProtoField.string("unixsock.protocol", "Payload protocol"),
  payload = ProtoField.bytes("unixsock.payload", "Payload"),
}
local flat = {}
for _, f in pairs(F) do flat[#flat + 1] = f end
unixsock.fields = flat

local E = {
  truncated = ProtoExpert.new("unixsock.expert.truncated", "Payload truncated to the snap length",
    expert.group.UNDECODED, expert.severity.NOTE),
  no_payload = ProtoExpert.new("unixsock.expert.no_payload",
    "Payload not readable (sendfile, splice, io_uring or kernel sender): only its length is known",
    expert.group.UNDECODED, expert.severity.WARN),
  lost = ProtoExpert.new("unixsock.expert.lost", "Part of this message was lost: the capture ring buffer was full",
    expert.group.SEQUENCE, expert.severity.WARN),
  bad_version = ProtoExpert.new("unixsock.expert.version", "Unknown unixsock header version",
    expert.group.MALFORMED, expert.severity.ERROR),
  malformed = ProtoExpert.new("unixsock.expert.malformed", "Malformed unixsock header",
    expert.group.MALFORMED, expert.severity.ERROR),
  ancillary = ProtoExpert.new("unixsock.expert.ancillary", "Ancillary data passed with this message",
    expert.group.COMMENTS_GROUP, expert.severity.CHAT),
}
unixsock.experts = { E.truncated, E.no_payload, E.lost, E.bad_version, E.malformed, E.ancillary }

-- Preferences ---------------------------------------------------------------
local defaults = {
  user_dlt = 0,
  stream_view = true,
  path_rules = "",
}
unixsock.prefs.user_dlt = Pref.uint("LINKTYPE_USERn number (n)", defaults.user_dlt,
  "n in LINKTYPE_USERn (147 + n) of unixsock records; match the capture's --linktype")
unixsock.prefs.stream_view = Pref.bool("Hand payloads to TCP/UDP dissectors", defaults.stream_view,
  "Build a synthetic TCP/UDP view so Wireshark reassembles and decodes the payload")
unixsock.prefs.path_rules = Pref.string("Path rules", defaults.path_rules,
  "Protocol per socket path, e.g. /run/my.sock=http;/tmp/app-*=http2;@bus=dbus " ..
  "(protocols: http, http2, x11, pgsql, dbus, syslog, data)")

-- Protocol choice -------------------------------------------------------------
-- server port in the synthetic view, per protocol
-- (protocols without a port of their own go to DISPATCH_PORT, where
-- unixsock_stream picks the dissector, deciding late if content must tell)
local DISPATCH_PORT = 4
local PORTS = { http = 80, http2 = DISPATCH_PORT, x11 = 6000, pgsql = 5432, dbus = DISPATCH_PORT, syslog = 514,
  data = DISPATCH_PORT }

local function glob_match(pattern, s)
  local lp = pattern:gsub("([%^%$%(%)%%%.%[%]%+%-%?])", "%%%1"):gsub("%*", ".*")
  return s:match("^" .. lp .. "$") ~= nil
end

local user_rules = {}
local function parse_rules(text)
  local rules = {}
  for item in string.gmatch(text or "", "[^;]+") do
    local pat, proto = item:match("^%s*(.-)%s*=%s*(%w+)%s*$")
    if pat and PORTS[proto] then rules[#rules + 1] = { pat, proto } end
  end
  return rules
end

local function proto_by_path(path)
  if not path or path == "" then return nil end
  for _, r in ipairs(user_rules) do
    if glob_match(r[1], path) then return r[2] end
  end
  local x = path:match("^/tmp/%.X11%-unix/X(%d+)$") or path:match("^@/tmp/%.X11%-unix/X(%d+)$")
  if x then return "x11", tonumber(x) end
  if path:match("%.s%.PGSQL%.%d+$") then return "pgsql" end
  if path:match("docker%.sock$") or path:match("podman%.sock$") then return "http" end
  if path:match("containerd%.sock$") or path:match("%.grpc%.sock$") then return "http2" end
  if path:match("^/run/dbus/") or path:match("^/var/run/dbus/") or path:match("/bus$") or path:match("^@/tmp/dbus%-") then
    return "dbus"
  end
  if path == "/dev/log" or path:match("/journal/dev%-log$") or path:match("/journal/syslog$") then return "syslog" end
  return nil
end

local HTTP_METHODS = { GET = 1, POST = 1, PUT = 1, DELETE = 1, HEAD = 1, OPTIONS = 1, PATCH = 1, CONNECT = 1, TRACE = 1 }

local function proto_by_content(tvb)
  local n = tvb:len()
  if n == 0 then return nil end
  local head = tvb:raw(0, math.min(n, 24))
  if head:sub(1, 14) == "PRI * HTTP/2.0" then return "http2" end
  local m = head:match("^(%u+) ")
  if (m and HTTP_METHODS[m]) or head:sub(1, 7) == "HTTP/1." then return "http" end
  if head:sub(1, 6) == "\0AUTH " or head:sub(1, 5) == "AUTH " then return "dbus" end
  if n >= 12 then
    local b0 = tvb(0, 1):uint()
    local major = (b0 == 0x6c) and tvb(2, 2):le_uint() or ((b0 == 0x42) and tvb(2, 2):uint() or 0)
    if major == 11 and tvb(1, 1):uint() == 0 then return "x11" end
  end
  if n >= 8 then
    local len, code = tvb(0, 4):uint(), tvb(4, 4):uint()
    if len == n and (code == 196608 or code == 80877103 or code == 80877104) then return "pgsql" end
  end
  return nil
end

-- Per-capture state, rebuilt on every (re)load. The first pass runs in frame
-- order; what it decides per frame is kept so later passes agree.
local conns, conn_list, frame_conn, frame_seq, frame_ack, frame_server, next_client_port, next_index, conns_by_port

local function reset_state()
  conns = {}           -- key -> connection
  conns_by_port = {}   -- synthetic client port -> connection
  conn_list = {}       -- connection index -> connection
  -- per frame, as flat arrays of numbers (a table per frame makes every
  -- garbage collection walk all of them: decoding grew worse than linear)
  frame_conn, frame_seq, frame_ack, frame_server = {}, {}, {}, {}
  next_client_port = 10000
  next_index = 0
end
reset_state()

local stream_view = defaults.stream_view -- the preference, read when it changes (not per record)

function unixsock.init()
  reset_state()
  user_rules = parse_rules(unixsock.prefs.path_rules)
  stream_view = unixsock.prefs.stream_view
end

-- Both directions of a connection must map to one key. A client's first
-- sends can precede accept(), when the server's socket has no inode yet, so a
-- connection to a named server is keyed by the client's socket inode alone.
local ZERO64 = string.rep("\0", 8)
-- key prefixes per socket type (no number-to-string conversion per record)
local KEY_PREFIX = setmetatable({}, { __index = function(t, k) local v = tostring(k) .. ":" t[k] = v return v end })
local function conn_key(h)
  local pre, ino, peer_ino = KEY_PREFIX[h.stype], h.ino, h.peer_ino
  if h.stype ~= 2 then
    if h.local_path ~= "" and peer_ino ~= ZERO64 then return pre .. "c" .. peer_ino end
    if h.local_path == "" and h.peer_path ~= "" then return pre .. "c" .. ino end
  end
  if peer_ino == ZERO64 then return pre .. ino end
  if ino < peer_ino then return pre .. ino .. "-" .. peer_ino end
  return pre .. peer_ino .. "-" .. ino
end

-- Path helpers ----------------------------------------------------------------
-- raw path bytes -> { display string, abstract }; a capture has few distinct paths
local path_cache, path_cache_size = {}, 0
local function path_string(raw)
  if raw == "" then return "" end
  local hit = path_cache[raw]
  if hit then return hit[1], hit[2] end
  local key = raw
  local abstract = raw:byte(1) == 0
  if abstract then raw = raw:sub(2) else raw = raw:match("^[^%z]*") end
  local s = raw:gsub("[^%w%p ]", function(c) return string.format("\\x%02x", c:byte()) end)
  s = (abstract and "@" or "") .. s
  if path_cache_size > 4096 then path_cache, path_cache_size = {}, 0 end
  path_cache[key] = { s, abstract }
  path_cache_size = path_cache_size + 1
  return s, abstract
end

-- The header ------------------------------------------------------------------
-- Values are read from one raw copy of the header (every Tvb call costs about
-- half a microsecond from Lua); tree items are built only when Wireshark
-- gave a tree (see has_tree below).
local byte = string.byte
local function u16(r, o) local a, b = byte(r, o + 1, o + 2) return a * 256 + b end
local function u32(r, o) local a, b, c, d = byte(r, o + 1, o + 4) return ((a * 256 + b) * 256 + c) * 256 + d end
-- Bits by arithmetic: bit32 exists only in Lua 5.2 (Wireshark 4.0), the &
-- operator only in 5.3+ (a syntax error for 5.2), so neither works everywhere.
local function flag_set(flags, bit) return flags % (bit + bit) >= bit end
local FLAG_FIELDS = { F.flags_truncated, F.flags_no_payload, F.flags_has_ctrl, F.flags_ctrl_trunc,
  F.flags_peer_guess, F.flags_lost, F.flags_more, F.flags_ctrl_bad }

local function header_tree(tvb, t)
  t:add(F.type, tvb(1, 1))
  t:add(F.hdr_len, tvb(2, 2))
  local ft = t:add(F.flags, tvb(4, 2))
  for _, f in ipairs(FLAG_FIELDS) do ft:add(f, tvb(4, 2)) end
  t:add(F.strategy, tvb(6, 1))
  t:add(F.comm, tvb(72, 16))
  t:add(F.pid, tvb(8, 4))
  t:add(F.tid, tvb(12, 4))
  t:add(F.uid, tvb(16, 4))
  t:add(F.gid, tvb(20, 4))
  t:add(F.peer_comm, tvb(88, 16))
  t:add(F.peer_pid, tvb(24, 4))
  t:add(F.syscall, tvb(28, 4))
  t:add(F.inode, tvb(32, 8))
  t:add(F.peer_inode, tvb(40, 8))
  t:add(F.len, tvb(48, 4))
  t:add(F.offset, tvb(52, 4))
  t:add(F.path_dev, tvb(56, 4))
  t:add(F.path_inode, tvb(64, 8))
end

local function option_tree(tvb, t, ty, o, l, s, abstract)
  local vt = tvb(o + 4, l)
  if ty == 1 or ty == 2 or ty == 3 then
    local field = (ty == 1 and F.local_path) or (ty == 2 and F.peer_path) or F.dest_path
    local it = t:add(field, vt, s)
    if abstract then it:add(F.abstract, vt(0, 1), true) end
  elseif ty == 4 then
    local n = math.floor(l / 4)
    local st = t:add(F.rights_count, vt, n)
    st:set_text("SCM_RIGHTS: " .. n .. " file descriptor(s)")
    for i = 0, n - 1 do st:add(F.rights_fd, vt(i * 4, 4)) end
    t:add_proto_expert_info(E.ancillary, "passes " .. n .. " file descriptor(s)")
  elseif ty == 5 and l >= 12 then
    local st = t:add(unixsock, vt, "SCM_CREDENTIALS")
    st:set_text(string.format("SCM_CREDENTIALS: pid %d uid %d gid %d", vt(0, 4):int(), vt(4, 4):uint(), vt(8, 4):uint()))
    st:add(F.creds_pid, vt(0, 4))
    st:add(F.creds_uid, vt(4, 4))
    st:add(F.creds_gid, vt(8, 4))
  elseif ty == 6 and l >= 8 then
    local st = t:add(F.tlv, tvb(o, 2))
    st:add(F.cmsg_level, vt(0, 4))
    st:add(F.cmsg_type, vt(4, 4))
    if l > 8 then st:add(F.cmsg_data, vt(8, l - 8)) end
  else
    local st = t:add(F.tlv, tvb(o, 2))
    st:add(F.tlv_len, tvb(o + 2, 2))
  end
end

-- h: the header's values (ino and peer_ino as their 8 raw bytes: keys that
-- compare like the numbers); nil when the record is malformed
-- comm fields (16 NUL-padded bytes) as strings; a capture has few distinct ones
local comm_cache, comm_cache_size = {}, 0
local function comm_string(raw16)
  local s = comm_cache[raw16]
  if s then return s end
  s = raw16:match("^[^%z]*")
  if comm_cache_size > 4096 then comm_cache, comm_cache_size = {}, 0 end
  comm_cache[raw16] = s
  comm_cache_size = comm_cache_size + 1
  return s
end

local function dissect_header(tvb, pinfo, tree, has_tree)
  local n = tvb:len()
  local t = has_tree and tree:add(unixsock, tvb(0, math.min(n, FIXED_LEN))) or nil
  -- expert info is recorded without a tree too (tshark -z expert)
  local et = t or tree
  if n < 4 then
    et:add_proto_expert_info(E.malformed, "record shorter than the header")
    return nil
  end
  local r = tvb:raw(0, n)
  local version = byte(r, 1)
  if t then t:add(F.version, tvb(0, 1)) end
  if version ~= VERSION then
    et:add_proto_expert_info(E.bad_version, "header version " .. version .. " (this dissector reads " .. VERSION .. ")")
    return nil
  end
  local hlen = u16(r, 2)
  if n < FIXED_LEN or hlen < FIXED_LEN or hlen > n then
    if t then t:add(F.hdr_len, tvb(2, 2)) end
    et:add_proto_expert_info(E.malformed, "header length " .. hlen .. " does not fit the record (" .. n .. " bytes)")
    return nil
  end
  -- one constructor: the table is made at its final size
  local h = {
    tree = t, n = n, raw = r, hlen = hlen,
    stype = byte(r, 2), flags = u16(r, 4), pid = u32(r, 8), peer_pid = u32(r, 24),
    ino = r:sub(33, 40), peer_ino = r:sub(41, 48), len = u32(r, 48), offset = u32(r, 52),
    comm = comm_string(r:sub(73, 88)), peer_comm = comm_string(r:sub(89, 104)),
    local_path = "", peer_path = "", dest_path = "", path = "",
  }
  if t then
    t:set_len(hlen)
    header_tree(tvb, t)
  end

  -- options
  local o = FIXED_LEN
  while o + 4 <= hlen do
    local ty, l = u16(r, o), u16(r, o + 2)
    if o + 4 + l > hlen then
      et:add_proto_expert_info(E.malformed, "option runs past the header")
      break
    end
    local s, abstract
    if ty == 1 or ty == 2 or ty == 3 then
      s, abstract = path_string(r:sub(o + 5, o + 4 + l))
      if ty == 1 then h.local_path = s elseif ty == 2 then h.peer_path = s else h.dest_path = s end
    end
    if t then
      option_tree(tvb, t, ty, o, l, s, abstract)
    elseif ty == 4 then
      et:add_proto_expert_info(E.ancillary, "passes " .. math.floor(l / 4) .. " file descriptor(s)")
    end
    o = o + 4 + l + ((4 - l % 4) % 4)
  end
  -- the conversation's name: the server's bound path
  if h.stype == 2 then
    h.path = (h.dest_path ~= "" and h.dest_path) or (h.peer_path ~= "" and h.peer_path) or h.local_path
  else
    h.path = (h.local_path ~= "" and h.local_path) or h.peer_path
  end
  if t then
    t:add(F.path, h.path):set_generated()
    t:add(F.caplen, n - hlen):set_generated()
  end
  local flags = h.flags
  if flag_set(flags, 0x0001) then et:add_proto_expert_info(E.truncated) end
  if flag_set(flags, 0x0002) then et:add_proto_expert_info(E.no_payload) end
  if flag_set(flags, 0x0020) then et:add_proto_expert_info(E.lost) end
  return h
end

-- The stream view ---------------------------------------------------------------
-- An IPv4 header under the synthetic TCP/UDP one: Wireshark's GUI builds its
-- Follow and Conversation filters from the network-layer addresses
-- (pinfo->net_src/net_dst, then find_conversation on them, and "ip.addr eq"
-- for Conversation Filter), which only a real network layer sets and matches.
-- tshark -z follow takes another path, so without it only the GUI failed
-- ("A transport or network layer header is needed").
local CLIENT_IP, SERVER_IP = "\127\85\0\1", "\127\85\0\2"
-- the IPv4 header after its total length, per [stream][from_server]: id 0, DF,
-- TTL 64, protocol (TCP for streams, else UDP), no checksum, the addresses
local IP_TAIL = {}
for _, stream in ipairs({ true, false }) do
  local proto = stream and "\6" or "\17"
  IP_TAIL[stream] = {
    [false] = "\0\0\64\0\64" .. proto .. "\0\0" .. CLIENT_IP .. SERVER_IP,
    [true] = "\0\0\64\0\64" .. proto .. "\0\0" .. SERVER_IP .. CLIENT_IP,
  }
end
local ip_dissector = Dissector.get("ip")
local data_dissector = Dissector.get("data")

local function be16(n)
  return string.char(math.floor(n / 256) % 256, n % 256)
end
local function be32(n)
  n = n % 4294967296
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

-- First pass: decide the connection, direction and sequence numbers of a frame
-- (kept in the frame_* arrays, which later passes read).
local function track(n, h, tvb)
  local key = conn_key(h)
  local c = conns[key]
  if not c then
    local proto, display = proto_by_path(h.path)
    if not proto and h.n > h.hlen then proto = proto_by_content(tvb(h.hlen):tvb()) end
    proto = proto or "data"
    local sport = PORTS[proto]
    if proto == "x11" then sport = 6000 + math.min(display or 0, 63) end
    c = { index = next_index, client_port = next_client_port, server_port = sport, proto = proto, next_seq = {},
      labels = {}, port_bytes = {} }
    next_index = next_index + 1
    next_client_port = next_client_port + 1
    if next_client_port > 65000 then next_client_port = 10000 end
    c.first_speaker = h.ino
    conns[key] = c
    conn_list[c.index] = c
    conns_by_port[c.client_port] = c
  end
  local me = h.ino
  -- the server is the end holding the conversation's bound path; for
  -- unnamed pairs, whoever did not speak first
  local from_server
  if h.path ~= "" then
    from_server = (h.local_path ~= "" and h.path == h.local_path)
  else
    from_server = (me ~= c.first_speaker)
  end
  local peer = h.peer_ino
  local seq
  if h.offset == 0 then
    seq = c.next_seq[me] or 1
    c.next_seq[me] = seq + h.len
    c["msg_start_" .. me] = seq
  else
    seq = (c["msg_start_" .. me] or 1) + h.offset
  end
  frame_conn[n], frame_seq[n], frame_ack[n], frame_server[n] = c.index, seq, c.next_seq[peer] or 1, from_server
end

-- The synthetic TCP/UDP packet: its header, then the payload (raw bytes).
-- ports of the synthetic view per connection and direction, as 4 header bytes
local function port_bytes(c, from_server)
  local p = c.port_bytes[from_server]
  if not p then
    local sport = from_server and c.server_port or c.client_port
    local dport = from_server and c.client_port or c.server_port
    p = be16(sport) .. be16(dport)
    c.port_bytes[from_server] = p
  end
  return p
end

local TCP_TAIL = "\80\24" .. be16(65535) .. "\0\0\0\0" -- offset 5, PSH|ACK, window, checksum, urgent

-- IPv4 header: version 4, 20 bytes, total length, then IP_TAIL. A record
-- carries up to 256 KiB, more than an IPv4 total length holds: those get 0,
-- which Wireshark reads as the frame's length (its "TSO" rule, on by default
-- in 4.0 to 4.6).
local function ip_header(from_server, stream, total)
  return "\69\0" .. be16(total <= 65535 and total or 0) .. IP_TAIL[stream][from_server]
end

local function synthetic_tvb(c, from_server, seq, ack, payload, stream)
  local hdr
  if stream then
    hdr = port_bytes(c, from_server) .. be32(seq) .. be32(ack) .. TCP_TAIL
  else
    hdr = port_bytes(c, from_server) .. be16(math.min(8 + #payload, 65535)) .. "\0\0"
  end
  hdr = ip_header(from_server, stream, 20 + #hdr + #payload) .. hdr
  return ByteArray.new(hdr .. payload, true):tvb(stream and "Stream view (synthetic TCP)" or "Datagram view (synthetic UDP)")
end

-- (Wireshark fills the Source and Destination columns from pinfo->src/dst after
-- all dissectors ran, so they show the stream view's addresses whatever the
-- Lua writes there: the profile "unixsock" shows unixsock.from/to instead.)
-- "curl 4242", "dockerd 811" and the Info summary, made once per connection
-- and direction while sender, peer and path stay the same
local function labels(c, from_server, h)
  local l = c.labels[from_server]
  if l and l.pid == h.pid and l.peer_pid == h.peer_pid and l.comm == h.comm and l.peer_comm == h.peer_comm
    and l.path == h.path then
    return l.who, l.peer, l.summary
  end
  local who = h.comm .. " " .. h.pid
  local peer = h.peer_pid ~= 0 and ((h.peer_comm ~= "" and h.peer_comm or "?") .. " " .. h.peer_pid) or "?"
  local summary = who .. " → " .. peer .. " " .. (h.path ~= "" and h.path or "(unnamed)")
  c.labels[from_server] = { pid = h.pid, peer_pid = h.peer_pid, comm = h.comm, peer_comm = h.peer_comm, path = h.path,
    who = who, peer = peer, summary = summary }
  return who, peer, summary
end

-- Does Wireshark need tree items? When it gave the dissector a tree (a C
-- dissector's `if (tree)`): for the details pane and -V, and also when the tree
-- only feeds fields (-T fields, -Y, custom columns, colouring rules). Without
-- one, skipping them saves most of the work (callgrind, 4000 records: on 4.0
-- 145k instructions per record without the items, 461k with; on 4.6 126k and
-- 396k). The only thing that tells in every version is TreeItem's documented
-- __tostring, "... has subtree=false ..." when there is no tree (checked on
-- 4.0, 4.4 and 4.6; about 4k instructions per record); if its wording ever
-- changes the items are always built.
-- Not tree.text: 4.6 leaves it nil for a tree that only feeds fields (every
-- unixsock.* field was empty there); not tree.visible: false for those too;
-- not tree.hidden: 4.6 reads true also without a tree.
local function has_tree(tree)
  return not tostring(tree):find("has subtree=false", 1, true)
end

-- The dissector -------------------------------------------------------------------
function unixsock.dissector(tvb, pinfo, tree)
  local cols = pinfo.cols -- (every pinfo.cols.X access allocates: fetched once)
  local h = dissect_header(tvb, pinfo, tree, has_tree(tree))
  if not h then
    cols.protocol = "UNIXSOCK"
    cols.info = "Malformed unixsock record"
    return tvb:len()
  end
  local n = h.n
  local t = h.tree
  if t and n > h.hlen then t:add(F.payload, tvb(h.hlen)) end

  local num = pinfo.number
  if not frame_conn[num] then track(num, h, tvb) end
  local c, from_server = conn_list[frame_conn[num]], frame_server[num]
  local who, peer, summary = labels(c, from_server, h)
  if t then
    t:add(F.from, who):set_generated()
    t:add(F.to, peer):set_generated()
    t:add(F.stream, c.index):set_generated()
    t:add(F.protocol, c.proto):set_generated()
  end

  if stream_view and (n > h.hlen or h.stype == 1) then
    local stream = (h.stype == 1)
    local vtvb = synthetic_tvb(c, from_server, frame_seq[num], frame_ack[num], h.raw:sub(h.hlen + 1), stream)
    if t then
      t:add(F.view, string.format("IPv4/%s %d → %d, %s addresses 127.85.0.1 (client) / 127.85.0.2 (server)",
        stream and "TCP" or "UDP", from_server and c.server_port or c.client_port,
        from_server and c.client_port or c.server_port, "not network traffic:")):set_generated()
    end
    ip_dissector:call(vtvb, pinfo, tree)
  elseif n > h.hlen then
    data_dissector:call(tvb(h.hlen):tvb(), pinfo, tree)
  end

  local proto_col = tostring(cols.protocol)
  if proto_col == "TCP" or proto_col == "UDP" or proto_col == "" or proto_col == "Data" then cols.protocol = "UNIXSOCK" end
  local info = cols.info
  info:clear_fence()
  if proto_col == "TCP" or proto_col == "UDP" then
    -- no protocol above the synthetic view: say what the record is instead of the view's own summary
    local text = string.format("%s len %d", SOCK_TYPES[h.stype] or "?", h.len)
    if h.offset > 0 then text = text .. " (part at " .. h.offset .. ")" end
    if n > h.hlen and proto_col == "TCP" and tostring(info):find("reassembled PDU") then
      text = text .. " [segment of a reassembled message]"
    end
    info:set(summary .. "  " .. text)
  else
    info:prepend(summary .. "  ")
  end
  return n
end

-- D-Bus over a stream: steps over the SASL handshake, frames messages and
-- hands each to Wireshark's D-Bus dissector (registered for DLT_DBUS).
local dbus_stream = Proto("unixsock_dbus", "D-Bus stream (unixsock)")
local DF = {
  sasl = ProtoField.string("unixsock_dbus.sasl", "SASL line"),
  msg_len = ProtoField.uint32("unixsock_dbus.msg_len", "D-Bus message length"),
}
dbus_stream.fields = { DF.sasl, DF.msg_len }
local wtap_table = DissectorTable.get("wtap_encap")

local SASL_WORDS = { AUTH = 1, OK = 1, BEGIN = 1, DATA = 1, REJECTED = 1, ERROR = 1, CANCEL = 1,
  NEGOTIATE_UNIX_FD = 1, AGREE_UNIX_FD = 1 }

local function align8(n) return n + ((8 - n % 8) % 8) end

function dbus_stream.dissector(tvb, pinfo, tree)
  local off, n = 0, tvb:len()
  local did = false
  while off < n do
    local b0 = tvb(off, 1):uint()
    local rest = n - off
    local word = tvb:raw(off, math.min(rest, 20)):match("^%z?(%u[%u_]*)")
    if b0 == 0 and rest == 1 then
      tree:add(DF.sasl, tvb(off, 1), "NUL (credentials byte)")
      off = off + 1
    elseif word and SASL_WORDS[word] then
      local s = tvb:raw(off, rest)
      local e = s:find("\r\n", 1, true)
      if not e then
        pinfo.desegment_offset = off
        pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
        return n
      end
      local line = s:sub(1, e - 1):gsub("%z", "")
      tree:add(DF.sasl, tvb(off, e + 1), line)
      pinfo.cols.protocol = "D-Bus"
      if not did then pinfo.cols.info = "SASL " .. line else pinfo.cols.info:append(", SASL " .. line) end
      did = true
      off = off + e + 1
    elseif (b0 == 0x6c or b0 == 0x42) and rest >= 16 then
      local le = (b0 == 0x6c)
      local body = le and tvb(off + 4, 4):le_uint() or tvb(off + 4, 4):uint()
      local flen = le and tvb(off + 12, 4):le_uint() or tvb(off + 12, 4):uint()
      local total = 16 + align8(flen) + body
      if total > 134217728 then
        data_dissector:call(tvb(off):tvb(), pinfo, tree)
        return n
      end
      if total > rest then
        pinfo.desegment_offset = off
        pinfo.desegment_len = total - rest
        return n
      end
      tree:add(DF.msg_len, tvb(off, 16), total)
      wtap_table:try(wtap.DBUS, tvb(off, total):tvb(), pinfo, tree)
      did = true
      off = off + total
    elseif rest < 16 and (b0 == 0x6c or b0 == 0x42) then
      pinfo.desegment_offset = off
      pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
      return n
    else
      data_dissector:call(tvb(off):tvb(), pinfo, tree)
      return n
    end
  end
  return n
end

-- The dispatcher: payloads of connections whose protocol has no port of its
-- own. The protocol may be decided late, by the first recognizable content
-- from either side (an HTTP/2 server speaks before the client's preface).
local dispatch = Proto("unixsock_stream", "unixsock payload dispatcher")
local SUB = { http = Dissector.get("http"), http2 = Dissector.get("http2"), pgsql = Dissector.get("pgsql"),
  syslog = Dissector.get("syslog") }
local tcp_port_table = DissectorTable.get("tcp.port")

function dispatch.dissector(tvb, pinfo, tree)
  local c = conns_by_port[pinfo.src_port] or conns_by_port[pinfo.dst_port]
  if c and c.proto == "data" and not pinfo.visited then
    c.proto = proto_by_content(tvb) or "data"
  end
  local proto = c and c.proto or "data"
  if proto == "dbus" then
    return dbus_stream.dissector(tvb, pinfo, tree)
  end
  if proto == "x11" then
    return tcp_port_table:try(6000, tvb, pinfo, tree)
  end
  local d = SUB[proto]
  if d then return d:call(tvb, pinfo, tree) end
  data_dissector:call(tvb, pinfo, tree)
  return tvb:len()
end

-- Registration ------------------------------------------------------------------
local registered_dlt = nil
local function register_dlt()
  local t = DissectorTable.get("wtap_encap")
  if registered_dlt then t:remove(registered_dlt, unixsock) end
  registered_dlt = wtap.USER0 + math.min(unixsock.prefs.user_dlt, 15)
  t:add(registered_dlt, unixsock)
end

function unixsock.prefs_changed()
  user_rules = parse_rules(unixsock.prefs.path_rules)
  stream_view = unixsock.prefs.stream_view
  register_dlt()
end

register_dlt()
DissectorTable.get("tcp.port"):add(DISPATCH_PORT, dispatch)
DissectorTable.get("udp.port"):add(DISPATCH_PORT, dispatch)
