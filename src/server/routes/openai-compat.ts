/**
 * OpenAI-compatible endpoints, so the official OpenAI clients can talk to an agent: `model` names
 * the agent (its name or id), and each request is one run of it.
 *
 * - `POST /v1/chat/completions`: the run's input is the last message, which must be a `user`
 *   message; earlier messages are ignored (the run is stateless, and the agent's own instructions
 *   replace any `system`/`developer` message). For a conversation with memory use `/v1/responses`.
 * - `POST /v1/responses`: the input is `input` (a string, or the text of the last item, which must
 *   be a user message). Every response runs on a thread: the first call creates one, and
 *   `previous_response_id` (`resp_<runId>`) continues the thread of that run, so nothing is
 *   stored beyond the runs themselves. The agent's instructions replace `instructions`.
 *
 * Known OpenAI request fields that agentpool cannot honour in a meaningful way for a hosted agent
 * (sampling, token limits, logprobs, response formats, caching and service hints …) are accepted
 * and ignored; client-side `tools`/`functions`, `n > 1`, `background`, `conversation` and `prompt`
 * are rejected, because ignoring them would silently change the answer's meaning. Anything else is
 * an unknown field (400), like everywhere on this server.
 *
 * Errors keep the catalogue's code and status, in OpenAI's shape:
 * `{ error: { message, type, param, code, details } }`. A run that fails before producing output
 * answers with its error's status even when streaming was asked for; one that fails mid-stream
 * ends the stream with `data: {"error": …}` (chat) or `response.failed` (responses).
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.ts';
import { registerChatCompletionRoutes } from '../openai/chat-completions.ts';
import { registerResponsesRoutes } from '../openai/responses.ts';

/** Registers `POST /v1/chat/completions` and `POST /v1/responses`. */
export function registerOpenAICompatRoutes(app: FastifyInstance, context: RouteContext): void {
  registerChatCompletionRoutes(app, context);
  registerResponsesRoutes(app, context);
}
