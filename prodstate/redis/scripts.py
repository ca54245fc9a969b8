"""The Lua scripts prodstate runs inside Redis: every client write goes through one.

A fenced script first checks the root's ``prodstate:epoch`` against the epoch the client
read with the root's address (a deposed root refuses the write), then checks every key
the command touches, as the server itself extracts them (``COMMAND GETKEYS``), so that no
command writes under ``prodstate:`` (``MSET a 1 prodstate:epoch 9``, ``RENAME x
prodstate:epoch`` and the like would otherwise stop every write until the next failover).

The agent loads both scripts into its Redis (``SCRIPT LOAD``, on every node: any branch
may become root); the writer identity may run them by digest (``EVALSHA``) but may not
load, flush or run other scripts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from prodstate.core.heartbeat import EPOCH_KEY

#: Keys the system writes itself; clients may read them but never write them.
RESERVED_PREFIX = "prodstate:"


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1 digest (what ``EVALSHA`` names it by)."""

    name: str
    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


_PRELUDE = f"""
local PREFIX = '{RESERVED_PREFIX}'
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  return redis.error_reply('STALEEPOCH this Redis serves epoch ' .. tostring(current) ..
    ', the write carries epoch ' .. ARGV[1])
end
-- Why ARGV[first..last] (one command) must not run, or nil if it may.
local function refusal(first, last)
  if last <= first then
    return nil  -- a command without arguments names no key
  end
  local keys = redis.pcall('COMMAND', 'GETKEYS', unpack(ARGV, first, last))
  if type(keys) == 'table' and keys.err then
    if string.find(keys.err, 'no key arguments', 1, true) then
      return nil
    end
    return 'RESERVED cannot tell which keys ' .. tostring(ARGV[first]) .. ' touches: ' .. keys.err
  end
  for _, key in ipairs(keys) do
    if string.sub(key, 1, #PREFIX) == PREFIX then
      return 'RESERVED keys under ' .. PREFIX .. ' belong to prodstate itself: ' .. key
    end
  end
  return nil
end
"""

#: One command: KEYS[1] the epoch key; ARGV the epoch, then the command's words.
FENCED_WRITE = Script(
    "fenced-write",
    _PRELUDE
    + """
local why = refusal(2, #ARGV)
if why then
  return redis.error_reply(why)
end
return redis.call(unpack(ARGV, 2))
""",
)

#: Several commands applied together (no other write between them). ARGV after the
#: epoch: for each command, its length then its words. Every command is checked first.
#: The two passes of a batch from ARGV[i] on (each command: its word count, then its
#: words): refuse the whole batch if any command touches a reserved key, then apply them.
_REFUSE_ANY = """while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local why = refusal(i + 1, i + n)
  if why then
    return redis.error_reply(why)
  end
  i = i + n + 1
end
"""
_APPLY_ALL = """while i <= #ARGV do
  local n = tonumber(ARGV[i])
  replies[#replies + 1] = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return replies
"""

FENCED_BATCH = Script(
    "fenced-batch",
    _PRELUDE + "\nlocal i = 2\n" + _REFUSE_ANY + "local replies = {}\ni = 2\n" + _APPLY_ALL,
)

#: A batch applied only if hash fields hold what the caller expects (a compare-and-set
#: checked inside the write itself). ARGV after the epoch: the number of conditions, then
#: for each its hash key, field, ``=`` and the value it must hold, or ``absent`` and an
#: empty word; then the commands as in FENCED_BATCH. The first condition that does not
#: hold stops it with ``CONFLICT condition N: ...``, before anything is written.
FENCED_CHECKED_BATCH = Script(
    "fenced-checked-batch",
    _PRELUDE
    + """
local conditions = tonumber(ARGV[2])
local i = 3
for c = 1, conditions do
  local current = redis.call('HGET', ARGV[i], ARGV[i + 1])
  local wanted = false
  if ARGV[i + 2] == '=' then
    wanted = ARGV[i + 3]
  end
  if current ~= wanted then
    return redis.error_reply('CONFLICT condition ' .. c .. ': ' .. ARGV[i] .. ' ' ..
      ARGV[i + 1] .. ' is ' .. (current or '(absent)') .. ', expected ' ..
      (wanted or '(absent)'))
  end
  i = i + 4
end
local first = i
"""
    + _REFUSE_ANY
    + "local replies = {}\ni = first\n"
    + _APPLY_ALL,
)

SCRIPTS = (FENCED_WRITE, FENCED_BATCH, FENCED_CHECKED_BATCH)
__all__ = [
    "EPOCH_KEY",
    "FENCED_BATCH",
    "FENCED_CHECKED_BATCH",
    "FENCED_WRITE",
    "RESERVED_PREFIX",
    "SCRIPTS",
    "Script",
]
