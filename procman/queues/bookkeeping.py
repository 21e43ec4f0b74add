"""What a procman worker writes to Redis for each job: one Lua script takes the job and records it
started, one pipeline records it finished. RQ's own ``SimpleWorker`` spends about 57 commands in
about 20 round trips on a no-op job; these two round trips hold 18 commands.

**Start** (``START_SCRIPT``, one ``EVALSHA``; 7 commands): ``LMOVE`` of the first job id found, in
the order drawn for this fetch, from its queue into the worker's work-in-progress list (see
``procman.queues.recovery``); ``HGETALL`` of the job (a job deleted while queued just leaves the
list, and the next id is tried); ``HSET`` of its ``status`` (``started``), ``started_at``,
``last_heartbeat`` and ``worker_name``; ``ZADD`` of ``<job id>:<execution id>`` to its queue's
started registry with no expiry; ``HSET`` of RQ's execution hash and ``SADD`` of it to the
worker's execution set (what ``procman jobs`` and RQ read to say what a worker runs). Taking the
job and recording it started are one atomic step. Only when needed: ``PERSIST`` of a job enqueued
with a ``ttl`` (as RQ does), ``HSET`` of the worker's state to ``busy`` after it was idle.

**Finish** (``FINISH_SCRIPT``, one ``EVALSHA``; 11 commands), sent in the pipeline of the job's
completion, which other counters may join (``procman.queues.worker``): ``EXISTS`` of the job's
dependents set (when some job waits for this one, nothing is written and the worker hands the job
to RQ's own ``handle_job_success``, which enqueues them); ``HSET`` of ``status`` (``finished``),
``ended_at`` and ``last_heartbeat``; ``XADD`` of RQ's result (what ``Job.return_value()``,
``procman jobs show`` and ``rq`` read) and ``EXPIRE`` of the result stream; ``ZADD`` to the
finished registry; ``EXPIRE`` of the job (its ``result_ttl``); ``ZREM`` from the started registry;
``DEL`` of the execution hash and ``SREM`` from the worker's execution set; ``LREM`` from the
work-in-progress list. Only when needed: ``EXPIRE`` of the job's dependencies set.

The scripts name the keys of one job they build from its id (``rq:job:<id>``…) besides those
passed in ``KEYS``: like RQ itself, they are for a single Redis, not a Redis Cluster.
"""

from __future__ import annotations

from rq.defaults import RQ_KEY_PREFIX
from rq.job import Job

EXECUTION_PREFIX = f"{RQ_KEY_PREFIX}:execution:"
"""RQ's ``Execution.key``: ``rq:execution:<job id>:<execution id>``."""

START_SCRIPT = """
-- KEYS[1] the worker's work-in-progress list, KEYS[2] its execution set, KEYS[3] its hash,
-- KEYS[4 .. 3+n] the queues in fetch order, KEYS[4+n .. 3+2n] their started registries.
-- ARGV[1] worker name, ARGV[2] execution id, ARGV[3] now (RQ's format), ARGV[4] now (seconds),
-- ARGV[5] '1': set the worker's state busy, ARGV[6] a job id already in the list, or '',
-- ARGV[7] the job key prefix, ARGV[8] the execution key prefix.
local n = (#KEYS - 3) / 2
local function start(i, id)
  local job_key = ARGV[7] .. id
  local fields = redis.call('HGETALL', job_key)
  if #fields == 0 then
    redis.call('LREM', KEYS[1], -1, id)
    return nil
  end
  redis.call('HSET', job_key, 'status', 'started', 'started_at', ARGV[3],
    'last_heartbeat', ARGV[3], 'worker_name', ARGV[1])
  for k = 1, #fields, 2 do
    if fields[k] == 'ttl' then
      redis.call('PERSIST', job_key)
      break
    end
  end
  local member = id .. ':' .. ARGV[2]
  redis.call('ZADD', KEYS[3 + n + i], '+inf', member)
  redis.call('HSET', ARGV[8] .. member, 'id', ARGV[2], 'job_id', id, 'created_at', ARGV[4],
    'last_heartbeat', ARGV[4], 'worker_name', ARGV[1])
  redis.call('SADD', KEYS[2], member)
  if ARGV[5] == '1' then
    redis.call('HSET', KEYS[3], 'state', 'busy')
  end
  return {i - 1, id, fields}
end
if ARGV[6] ~= '' then
  return start(1, ARGV[6]) or false
end
for i = 1, n do
  while true do
    local id = redis.call('LMOVE', KEYS[3 + i], KEYS[1], 'LEFT', 'RIGHT')
    if not id then break end
    local started = start(i, id)
    if started then return started end
  end
end
return false
"""

FINISH_SCRIPT = """
-- KEYS[1] job hash, KEYS[2] its dependents set, KEYS[3] its result stream, KEYS[4] the finished
-- registry, KEYS[5] the started registry, KEYS[6] the execution hash, KEYS[7] the worker's
-- execution set, KEYS[8] the worker's work-in-progress list, KEYS[9] (optional) the job's
-- dependencies set.
-- ARGV[1] job id, ARGV[2] execution member, ARGV[3] ended_at (RQ's format), ARGV[4] result ttl,
-- ARGV[5] finished registry score, ARGV[6 ..] the result's fields and values.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'finished', 'ended_at', ARGV[3], 'last_heartbeat', ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '10', '*', unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if KEYS[9] then
  redis.call('EXPIRE', KEYS[9], ARGV[4])
end
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('DEL', KEYS[6])
redis.call('SREM', KEYS[7], ARGV[2])
redis.call('LREM', KEYS[8], 1, ARGV[1])
return 1
"""


def job_key_prefix() -> str:
    return Job.redis_job_namespace_prefix


def execution_key(member: str) -> str:
    """RQ's execution hash for a started registry member ``<job id>:<execution id>``."""
    return EXECUTION_PREFIX + member
