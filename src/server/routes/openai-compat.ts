/**
 * OpenAI-compatible endpoints, so the official OpenAI clients, the AI SDK and LangChain can talk
 * to an agent: `model` names the agent (its name or id), and each request is one run of it.
 *
 * - `POST /v1/chat/completions`: stateless, like OpenAI's. The whole `messages` array reaches the
 *   model (system/developer messages after the agent's instructions, earlier turns as history,
 *   the last message — user text or tool results — as the input).
 * - `POST /v1/responses`, `GET /v1/responses/{id}`: every stored response runs on a thread, so
 *   `previous_response_id` (`resp_<runId>`) continues it; `store: false` keeps nothing.
 * - `GET /v1/models`, `GET /v1/models/{id}`: the project's agents as models.
 *
 * Client tools (functions) are offered next to the agent's own tools, which agentpool runs
 * itself; a call of a client tool ends the run and is answered as `tool_calls` /
 * `function_call` items. Structured output, tool choice, output caps and sampling reach the
 * model. Every request field is honoured, or accepted because it cannot change the answer
 * (end-user ids, cache and service hints), or accepted only at its neutral value and refused
 * with a 400 naming it otherwise (`src/server/openai/fields.ts`); unknown fields are a 400 too.
 *
 * Errors keep the catalogue's code and status, in OpenAI's shape:
 * `{ error: { message, type, param, code, details } }`. A run that fails before producing output
 * answers with its error's status even when streaming was asked for; one that fails mid-stream
 * ends the stream with `data: {"error": …}` (chat) or `response.failed` (responses).
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { registerChatCompletionRoutes } from '../openai/chat-completions.ts';
import { registerModelRoutes } from '../openai/models.ts';
import { registerResponsesRoutes } from '../openai/responses.ts';

/** Registers the OpenAI-compatible routes: chat completions, responses and models. */
export function registerOpenAICompatRoutes(app: FastifyInstance, context: RouteContext): void {
  registerChatCompletionRoutes(app, context);
  registerResponsesRoutes(app, context);
  registerModelRoutes(app, context);
}
