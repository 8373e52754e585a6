import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LanguageModelV3CallOptions } from '@ai-sdk/provider';
import {
  applyCallSettings,
  type CallSettings,
  effectiveMaxTokens,
  resolveCallSettings,
} from '../../src/run/call-settings.ts';

/** A model call's options with the run's settings for `step` applied. */
function callOptions(settings: CallSettings, step: number): Partial<LanguageModelV3CallOptions> {
  const call = { prompt: [] } as LanguageModelV3CallOptions;
  applyCallSettings(call, settings, step);
  const { prompt: _prompt, ...applied } = call;
  return applied;
}

describe('call settings', () => {
  it('default to nothing: every model call keeps the agent values and the provider defaults', () => {
    assert.deepEqual(resolveCallSettings(undefined), {});
    assert.deepEqual(resolveCallSettings({}), {});
    assert.deepEqual(callOptions({}, 1), {});
  });

  it("cap the output at the smaller of the agent's maxTokens and the run's maxOutputTokens", () => {
    assert.equal(effectiveMaxTokens(undefined, {}), undefined);
    assert.equal(effectiveMaxTokens(100, {}), 100);
    assert.equal(effectiveMaxTokens(undefined, { maxOutputTokens: 40 }), 40);
    assert.equal(effectiveMaxTokens(100, { maxOutputTokens: 40 }), 40);
    assert.equal(effectiveMaxTokens(100, { maxOutputTokens: 400 }), 100);
  });

  it('apply a forced tool choice to the first model call only, and none to every call', () => {
    const forced = resolveCallSettings({ toolChoice: { type: 'required' } });
    assert.deepEqual(callOptions(forced, 1).toolChoice, { type: 'required' });
    assert.equal(callOptions(forced, 2).toolChoice, undefined);
    const none = resolveCallSettings({ toolChoice: { type: 'none' } });
    assert.deepEqual(callOptions(none, 3).toolChoice, { type: 'none' });
  });

  it('keep a JSON response format with its schema for every call', () => {
    const schema = { type: 'object', properties: { a: { type: 'number' } } };
    const settings = resolveCallSettings({ responseFormat: { type: 'json', schema, name: 'thing' } });
    assert.deepEqual(callOptions(settings, 2).responseFormat, { type: 'json', schema, name: 'thing' });
  });
});
