// The real `openwhisk` npm client against owl. The Rust test tests/npm_client.rs
// starts the gateway (MiniStack + stand-in controller) and runs this file with
// OWL_API_HOST and OWL_API_KEY set. `guest/hello` is served from Lambda,
// `guest/greet` by the controller: the client must not be able to tell. The same holds
// for sequences: `guest/twice` (hello, hello) is composed by owl on Lambda,
// `guest/twice-greet` (greet, greet) is run by the controller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import openwhisk from 'openwhisk';

const ow = openwhisk({ apihost: process.env.OWL_API_HOST, api_key: process.env.OWL_API_KEY });
const MAPPED = 'hello';
const UNMAPPED = 'greet';

const RECORD_KEYS = ['activationId', 'annotations', 'duration', 'end', 'logs', 'name', 'namespace',
  'publish', 'response', 'start', 'subject', 'version'];

test('blocking invoke returns the activation record on both paths', async () => {
  for (const name of [MAPPED, UNMAPPED]) {
    const rec = await ow.actions.invoke({ name, blocking: true, params: { name: 'npm' } });
    assert.deepEqual(Object.keys(rec).sort(), RECORD_KEYS, name);
    assert.match(rec.activationId, /^[0-9a-f]{32}$/);
    assert.equal(rec.namespace, 'guest');
    assert.equal(rec.name, name);
    assert.deepEqual(Object.keys(rec.response).sort(), ['result', 'size', 'status', 'success'], name);
    assert.equal(rec.response.status, 'success');
    assert.deepEqual(rec.response.result, { greeting: 'Hello, npm!' }, name);
    assert.deepEqual(rec.logs, []);
  }
});

test('blocking invoke with result returns the result on both paths', async () => {
  for (const name of [MAPPED, UNMAPPED]) {
    const result = await ow.actions.invoke({ name, blocking: true, result: true, params: { name: 'r' } });
    assert.deepEqual(result, { greeting: 'Hello, r!' }, name);
  }
});

test('non-blocking invoke returns an activation id on both paths', async () => {
  for (const name of [MAPPED, UNMAPPED]) {
    const res = await ow.actions.invoke({ name });
    assert.deepEqual(Object.keys(res), ['activationId'], name);
    assert.match(res.activationId, /^[0-9a-f]{32}$/);
  }
});

test('an application error rejects with the error text and 502', async () => {
  for (const name of ['apperr', 'fails']) {
    await assert.rejects(
      ow.actions.invoke({ name, blocking: true }),
      (err) => {
        assert.equal(err.constructor.name, 'OpenWhiskError', name);
        assert.equal(err.statusCode, 502, name);
        assert.equal(err.message.includes('this went wrong'), true, `${name}: ${err.message}`);
        assert.equal(err.error.response.status, 'application error', name);
        return true;
      });
  }
});

test('a missing action rejects with 404 and OpenWhisk\'s text', async () => {
  for (const name of ['nothing-here', 'pkg/nothing-here']) {
    await assert.rejects(
      ow.actions.invoke({ name, blocking: true }),
      (err) => {
        assert.equal(err.statusCode, 404, name);
        assert.match(err.message, /The requested resource does not exist\./, name);
        return true;
      });
  }
});

test('a wrong key rejects with 401 on a mapped action', async () => {
  const bad = openwhisk({ apihost: process.env.OWL_API_HOST,
    api_key: '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:' + 'x'.repeat(64) });
  await assert.rejects(bad.actions.invoke({ name: MAPPED, blocking: true }), (err) => {
    assert.equal(err.statusCode, 401);
    assert.match(err.message, /The supplied authentication is invalid/);
    return true;
  });
});

async function eventually(fn) {
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('activations.get / logs / result / list read owl-served activations back', async () => {
  const { activationId } = await ow.actions.invoke({ name: MAPPED, blocking: true, params: { name: 'rec' } });
  const rec = await eventually(() => ow.activations.get({ name: activationId }));
  assert.equal(rec.activationId, activationId);
  assert.equal(rec.name, MAPPED);
  assert.deepEqual(rec.response.result, { greeting: 'Hello, rec!' });
  assert.ok(rec.logs.some((l) => / stdout: hello log line$/.test(l)), JSON.stringify(rec.logs));
  const logs = await ow.activations.logs({ name: activationId });
  assert.deepEqual(logs, { logs: rec.logs });
  const result = await ow.activations.result({ name: activationId });
  assert.deepEqual(result, { result: { greeting: 'Hello, rec!' }, size: rec.response.size, status: 'success', success: true });
  const list = await ow.activations.list({ limit: 50 });
  assert.ok(list.some((a) => a.activationId === activationId));
  const mine = await ow.activations.list({ name: MAPPED, limit: 50 });
  assert.ok(mine.length > 0 && mine.every((a) => a.name === MAPPED));
  const count = await ow.activations.list({ count: true });
  assert.ok(count.activations >= list.length);
});

test('a non-blocking activation id resolves to its record', async () => {
  const { activationId } = await ow.actions.invoke({ name: MAPPED, params: { name: 'later' } });
  const result = await eventually(() => ow.activations.result({ name: activationId }));
  assert.deepEqual(result.result, { greeting: 'Hello, later!' });
});

// A sequence's record and its components' as OpenWhisk writes them
// (SequenceActions.scala:198-248 makeSequenceActivation; components carry `cause`,
// SequenceActions.scala:379 and WskSequenceTests.scala checkSequenceLogsAndAnnotations).
test('a sequence and its components read back as OpenWhisk records them, on both paths', async () => {
  for (const [name, component] of [['twice', MAPPED], ['twice-greet', UNMAPPED]]) {
    const rec = await ow.actions.invoke({ name, blocking: true, params: { name: 'seq' } });
    assert.deepEqual(Object.keys(rec).sort(), RECORD_KEYS, name);
    // The first component gets the body; the second the first's result (no `name`).
    assert.deepEqual(rec.response.result, { greeting: 'Hello, stranger!' }, name);
    assert.equal(rec.logs.length, 2, name);
    const ann = Object.fromEntries(rec.annotations.map((a) => [a.key, a.value]));
    assert.equal(ann.kind, 'sequence', name);
    assert.equal(ann.topmost, true, name);
    assert.equal(ann.path, `guest/${name}`, name);
    assert.equal(ann.causedBy, undefined, name);
    const seq = await eventually(() => ow.activations.get({ name: rec.activationId }));
    assert.deepEqual(seq.logs, rec.logs, name);
    assert.equal(seq.cause, undefined, name);
    const parts = await Promise.all(rec.logs.map((id) => eventually(() => ow.activations.get({ name: id }))));
    parts.forEach((c) => {
      assert.equal(c.name, component, name);
      assert.equal(c.cause, rec.activationId, name);
      const cann = Object.fromEntries(c.annotations.map((a) => [a.key, a.value]));
      assert.equal(cann.causedBy, 'sequence', name);
    });
    assert.deepEqual(parts[0].response.result, { greeting: 'Hello, seq!' }, name);
    assert.deepEqual(parts[1].response.result, { greeting: 'Hello, stranger!' }, name);
    assert.equal(rec.duration, parts[0].duration + parts[1].duration, name);
    const listed = await eventually(async () => {
      const l = await ow.activations.list({ name, limit: 10 });
      assert.ok(l.some((a) => a.activationId === rec.activationId), name);
      return l;
    });
    assert.ok(listed.every((a) => a.name === name), name);
    const result = await ow.activations.result({ name: rec.activationId });
    assert.deepEqual(result.result, { greeting: 'Hello, stranger!' }, name);
  }
});
