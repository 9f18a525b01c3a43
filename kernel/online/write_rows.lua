-- The ingestion write rule (docs/protocol.md, "The write rule"), applied atomically to each key of a call.
-- Needs Redis 6.0 or later (PTTL and TIME; no Redis 7 commands).
--
-- One call writes the rows of several keys (KEYS). ARGV: 1 the ts field, 2 the ex field, 3 "1" when the table has
-- an expiry (max_age > 0) else "0", 4 the number of features F, 5..4+F the feature fields, then per key
-- (stride 3+F): EXPIREAT seconds ("0" = no expiry), ts bytes, ex bytes, F values ("" = null: the field is deleted).
-- Returns how many keys were written.
local function varint(b, i)
  local groups = {}
  while true do
    local c = string.byte(b, i)
    if c == nil then return nil, i end
    i = i + 1
    groups[#groups + 1] = c % 128
    if c < 128 then break end
  end
  local v, m = 0, 1
  if #groups == 10 then
    for k = 1, 9 do v = v + (127 - groups[k]) * m; m = m * 128 end
    return -(v + 1), i
  end
  for k = 1, #groups do v = v + groups[k] * m; m = m * 128 end
  return v, i
end

local function timestamp(b)
  local s, n, i = 0, 0, 1
  while i <= #b do
    local tag = string.byte(b, i)
    local v
    v, i = varint(b, i + 1)
    if v == nil then break end
    if tag == 8 then s = v elseif tag == 16 then n = v else break end
  end
  return s, n
end

-- replicated by its writes, not as a script, so that TIME may come before them: the default since Redis 5 (unless a
-- Redis 6 has lua-replicate-commands off), the only way on Redis 7 (where this call is a no-op)
if redis.replicate_commands then redis.replicate_commands() end
local call = redis.call
local ts_field, ex_field, has_ex, nf = ARGV[1], ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local fields = {}
for j = 1, nf do fields[j] = ARGV[4 + j] end
-- the HSET arguments of a row without nulls: filled in for each key
local set = {ts_field, false}
if has_ex then set[3] = ex_field; set[4] = false end
local base = #set
for j = 1, nf do set[base + 2 * j - 1] = fields[j]; set[base + 2 * j] = false end
local stride = 3 + nf
local written = 0
for k = 1, #KEYS do
  local key = KEYS[k]
  local o = 4 + nf + (k - 1) * stride
  local ts = ARGV[o + 2]
  local ttl = call('PTTL', key)  -- -2: no such key, -1: no expiry, else milliseconds left
  local newer = false
  if ttl ~= -2 then
    local stored = call('HGET', key, ts_field)
    if stored and stored ~= ts then
      local s, n = timestamp(stored)
      local new_s, new_n = timestamp(ts)
      newer = s > new_s or (s == new_s and n > new_n)
    end
  end
  if not newer then
    local del = nil
    set[2] = ts
    if has_ex then set[4] = ARGV[o + 3] end
    for j = 1, nf do
      local v = ARGV[o + 3 + j]
      set[base + 2 * j] = v
      if v == '' then
        if del == nil then del = {} end
        del[#del + 1] = fields[j]
      end
    end
    local hset = set
    if del ~= nil then
      hset = {}
      for i = 1, base do hset[i] = set[i] end
      for j = 1, nf do
        local v = set[base + 2 * j]
        if v ~= '' then hset[#hset + 1] = fields[j]; hset[#hset + 1] = v end
      end
    end
    call('HSET', key, unpack(hset))
    local at = tonumber(ARGV[o + 1])
    if ttl == -2 then
      -- a new key: nothing to delete
      if at ~= 0 then call('EXPIREAT', key, at) end
    else
      if not has_ex then
        if del == nil then del = {} end
        del[#del + 1] = ex_field
      end
      if del ~= nil then call('HDEL', key, unpack(del)) end
      if at == 0 then
        if ttl >= 0 then call('PERSIST', key) end
      elseif ttl >= 0 then
        -- is the key's expiry (clock + PTTL, in ms) before `at`? The clock is read after PTTL: the expiry is never
        -- taken for earlier than it is, and whole seconds (what EXPIREAT sets) come out exact
        local now = call('TIME')
        if tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000 + ttl < at * 1000 then
          call('EXPIREAT', key, at)
        end
      end
    end
    written = written + 1
  end
end
return written
