-- Run health.lua on a BlueGreenApp as Argo CD would, outside Argo CD:
--
--   kubectl get bga shop -o json | lua5.4 docs/argocd/try-health.lua
--   lua5.4 docs/argocd/try-health.lua shop.json
--
-- health.lua sees only the base and table libraries and the global obj, as under Argo CD.
-- Prints two lines, "status: <Healthy|Progressing|Suspended|Degraded|Unknown>" and
-- "message: <text>". The object is decoded by the small JSON decoder below; like Argo CD,
-- which hands the script Go float64 values, every JSON number becomes a Lua float, and
-- JSON null becomes nil.

local function decode(text)
  local pos = 1

  local function fail(what)
    error(string.format("JSON: %s at byte %d", what, pos), 0)
  end

  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or (#text + 1)
  end

  local function utf8_char(cp)
    if cp < 0x80 then
      return string.char(cp)
    elseif cp < 0x800 then
      return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
    elseif cp < 0x10000 then
      return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
    end
    return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
      0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end

  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

  local value

  local function hex4()
    local h = text:match("^%x%x%x%x", pos)
    if not h then fail("bad \\u escape") end
    pos = pos + 4
    return tonumber(h, 16)
  end

  local function str()
    pos = pos + 1 -- the opening quote
    local parts = {}
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then
        pos = pos + 1
        return table.concat(parts)
      elseif c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        pos = pos + 2
        if e == "u" then
          local cp = hex4()
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            pos = pos + 2
            local low = hex4()
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
          end
          parts[#parts + 1] = utf8_char(cp)
        elseif escapes[e] then
          parts[#parts + 1] = escapes[e]
        else
          fail("bad escape \\" .. e)
        end
      else
        local run = text:match('^[^"\\]+', pos)
        parts[#parts + 1] = run
        pos = pos + #run
      end
    end
  end

  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t, n = {}, 0
      skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        n = n + 1
        t[n] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:find("^true", pos) then
      pos = pos + 4
      return true
    elseif text:find("^false", pos) then
      pos = pos + 5
      return false
    elseif text:find("^null", pos) then
      pos = pos + 4
      return nil
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" or not tonumber(num) then fail("unexpected character") end
    pos = pos + #num
    return tonumber(num) + 0.0
  end

  local result = value()
  skip()
  if pos <= #text then fail("trailing data") end
  return result
end

local input
if arg[1] then
  local f = assert(io.open(arg[1], "r"))
  input = f:read("*a")
  f:close()
else
  input = io.read("*a")
end

-- health.lua runs with what Argo CD gives a check from argocd-cm: the base and table
-- libraries and the global obj; no string, math, io or os.
local sandbox = { obj = decode(input), table = table, _VERSION = _VERSION }
for _, name in ipairs({
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall",
}) do
  sandbox[name] = _G[name]
end
sandbox._G = sandbox
local here = (arg[0]:match("^(.*)[/\\]") or ".")
local check = assert(loadfile(here .. "/health.lua", "t", sandbox))
local hs = check()
io.write("status: ", tostring(hs.status), "\n", "message: ", tostring(hs.message), "\n")
