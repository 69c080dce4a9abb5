-- luacheck for wireshark/ (npm run lint). The dissector runs on Lua 5.2 to 5.4
-- (Wireshark 4.0 to 4.6): only the globals all three have (checked once with
-- each std: package.json), plus what Wireshark's Lua API defines.
-- No length limit: no formatter runs on the Lua, and the ProtoField table's
-- rows (up to ~140 columns) read best one field per line.
max_line_length = false
read_globals = {
  -- classes and functions (Wireshark's wslua reference)
  "Proto", "ProtoField", "ProtoExpert", "Pref", "Prefs", "Field", "FieldInfo",
  "Dissector", "DissectorTable", "Heuristic", "ByteArray", "Tvb", "TvbRange",
  "Pinfo", "TreeItem", "Address", "Column", "Columns", "NSTime", "Int64",
  "UInt64", "Struct", "GRegex", "Listener", "Dumper", "PrivateTable", "Dir",
  "register_postdissector", "set_plugin_info", "get_version", "all_field_infos",
  -- constants tables and values
  "base", "expert", "ftypes", "frametype", "wtap", "wtap_encaps",
  "wtap_filetypes", "DESEGMENT_ONE_MORE_SEGMENT", "PI_MALFORMED", "PI_WARN",
  "PI_ERROR", "PI_NOTE", "PI_CHAT", "PI_COMMENT", "PI_PROTOCOL",
}
