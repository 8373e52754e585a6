/**
 * The pure parts of MCP tools: the options' defaults and errors, the names the model sees, how a
 * declaration is checked and shown back, and how its secrets resolve into a session identity.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../../src/core/errors.ts';
import {
  identityKey,
  MASKED,
  parseMcpServerDeclaration,
  publicDeclaration,
  resolveConnection,
} from '../../../src/tools/mcp/declarations.ts';
import { resolveMcpOptions } from '../../../src/tools/mcp/mcp-options.ts';
import { modelToolNames } from '../../../src/tools/mcp/mcp-tools.ts';

const OPTIONS = resolveMcpOptions();

describe('MCP options', () => {
  it('pins the defaults', () => {
    assert.deepEqual(resolveMcpOptions(), {
      idleTimeoutMs: 300_000,
      listTtlMs: 300_000,
      callTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      breakerThreshold: 3,
      backoffInitialMs: 1000,
      backoffMaxMs: 60_000,
      maxSessions: 1000,
      allowStdio: 'admin',
      projectEnvPrefix: 'MCP_',
    });
  });

  it('names the field of a bad value', () => {
    assert.throws(
      () => resolveMcpOptions({ idleTimeoutMs: -1 }),
      /tools\.mcp\.idleTimeoutMs must be a positive integer, got -1/,
    );
    assert.throws(
      () => resolveMcpOptions({ allowStdio: 'yes' }),
      /tools\.mcp\.allowStdio must be one of "admin", "all", "none"/,
    );
    assert.throws(
      () => resolveMcpOptions({ backoffInitialMs: 5000, backoffMaxMs: 10 }),
      /tools\.mcp\.backoffMaxMs must be/,
    );
    assert.throws(() => resolveMcpOptions({ colour: 1 }), /tools\.mcp\.colour is not a known field/);
  });
});

describe('names the model sees', () => {
  it('are <server>__<tool>, other characters replaced by _', () => {
    assert.deepEqual(
      [...modelToolNames('github', [{ name: 'search_issues' }, { name: 'repo.get' }]).values()],
      ['github__search_issues', 'github__repo_get'],
    );
  });

  it('stay within 64 characters and distinct, with a stable hash suffix when cut or clashing', () => {
    const long = 'x'.repeat(80);
    const names = modelToolNames('srv', [{ name: long }, { name: 'a.b' }, { name: 'a_b' }]);
    const cut = names.get(long)!;
    assert.equal(cut.length, 64);
    assert.match(cut, /^srv__x+_[0-9a-f]{8}$/);
    assert.equal(names.get('a.b'), 'srv__a_b');
    assert.match(names.get('a_b')!, /^srv__a_b_[0-9a-f]{8}$/);
    assert.deepEqual(modelToolNames('srv', [{ name: long }]).get(long), cut, 'the same every time');
    for (const name of names.values()) assert.match(name, /^[a-zA-Z0-9_-]{1,64}$/);
  });
});

describe('declarations', () => {
  it('mask secret-looking literal values and keep env references when shown', () => {
    const declaration = parseMcpServerDeclaration(
      {
        transport: 'http',
        url: 'https://h/mcp',
        headers: { Authorization: 'Bearer x', 'X-Token': { env: 'MCP_T' }, Accept: 'application/json' },
      },
      { admin: false },
      OPTIONS,
    );
    assert.deepEqual(publicDeclaration(declaration), {
      transport: 'http',
      url: 'https://h/mcp',
      headers: { Authorization: MASKED, 'X-Token': { env: 'MCP_T' }, Accept: 'application/json' },
    });
    const stdio = parseMcpServerDeclaration(
      { transport: 'stdio', command: 'srv', env: { API_KEY: 'k', MODE: 'fast' } },
      { admin: true },
      OPTIONS,
    );
    assert.deepEqual(publicDeclaration(stdio), {
      transport: 'stdio',
      command: 'srv',
      env: { API_KEY: MASKED, MODE: 'fast' },
    });
  });

  it('refuse stdio for everyone with allowStdio none, and for project keys with admin', () => {
    const stdio = { transport: 'stdio', command: 'srv' };
    const none = resolveMcpOptions({ allowStdio: 'none' });
    assert.throws(
      () => parseMcpServerDeclaration(stdio, { admin: true }, none),
      (e) => isAgentPoolError(e, 'FORBIDDEN'),
    );
    assert.throws(
      () => parseMcpServerDeclaration(stdio, { admin: false }, OPTIONS),
      (e) => isAgentPoolError(e, 'FORBIDDEN'),
    );
    const all = resolveMcpOptions({ allowStdio: 'all' });
    assert.equal(parseMcpServerDeclaration(stdio, { admin: false }, all).transport, 'stdio');
  });

  it('resolve secrets at connect time into an identity that differs with the credentials and the project', () => {
    const declaration = parseMcpServerDeclaration(
      { transport: 'http', url: 'https://h/mcp', headers: { Authorization: { env: 'MCP_T' } } },
      { admin: true },
      OPTIONS,
    );
    const a = resolveConnection('s', declaration, { MCP_T: 'one' });
    const b = resolveConnection('s', declaration, { MCP_T: 'two' });
    assert.deepEqual(a, { transport: 'http', url: 'https://h/mcp', headers: { Authorization: 'one' } });
    assert.notEqual(identityKey('p', 's', a), identityKey('p', 's', b));
    assert.notEqual(identityKey('p', 's', a), identityKey('q', 's', a));
    assert.equal(
      identityKey('p', 's', a),
      identityKey('p', 's', resolveConnection('s', declaration, { MCP_T: 'one' })),
    );
    assert.throws(
      () => resolveConnection('s', declaration, {}),
      (e) => isAgentPoolError(e, 'MCP_UNAVAILABLE') && /MCP_T/.test(e.message),
    );
  });
});
