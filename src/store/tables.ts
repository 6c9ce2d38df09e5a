/**
 * The database's tables as Kysely sees them: one interface per table, the
 * columns as stored (JSON documents are TEXT, booleans are 0/1, times are
 * Unix seconds), so the same queries run on SQLite and PostgreSQL. Every
 * table has an integer `seq`, increasing with insertion: lists are ordered
 * and paginated by it (an id cursor is looked up to its seq).
 */
import type { Generated } from 'kysely';

export interface FilesTable {
  seq: Generated<number>;
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  created_at: number;
  expires_at: number | null;
  sha256: string;
}

export interface FineTuningJobsTable {
  seq: Generated<number>;
  id: string;
  created_at: number;
  /** The base model, as the request named it. */
  model: string;
  training_file: string;
  validation_file: string | null;
  suffix: string | null;
  seed: number;
  /** JSON object or null. */
  metadata: string | null;
  /** JSON: the method as requested (type, hyperparameters with "auto"), and the extension fields. */
  method: string;
  /** JSON: the resolved hyperparameters, once known. */
  hyperparameters: string | null;
  status: string;
  /** JSON {code, message, param} or null. */
  error: string | null;
  fine_tuned_model: string | null;
  finished_at: number | null;
  trained_tokens: number | null;
  estimated_finish: number | null;
  /** JSON array of file ids. */
  result_files: string;
  /** Set while a pause has been asked for and not yet taken effect. */
  pause_requested: number;
  /** How many times the trainer was started for this job (a restart after a crash resumes it). */
  attempts: number;
}

export interface FineTuningEventsTable {
  seq: Generated<number>;
  id: string;
  job_id: string;
  created_at: number;
  level: string;
  message: string;
  type: string;
  /** JSON object or null. */
  data: string | null;
}

export interface FineTuningCheckpointsTable {
  seq: Generated<number>;
  id: string;
  job_id: string;
  created_at: number;
  step_number: number;
  /** JSON object. */
  metrics: string;
  fine_tuned_model_checkpoint: string;
  /** The checkpoint's model directory, relative to the data directory. */
  dir: string;
}

export interface ModelsTable {
  seq: Generated<number>;
  /** The model's name, as requests give it. */
  id: string;
  created_at: number;
  owned_by: string;
  /** 'fine-tuned' (a published job result) or 'checkpoint'. */
  kind: string;
  /** Relative to the data directory. */
  dir: string;
  base_model: string;
  job_id: string | null;
}

export interface ResponsesTable {
  seq: Generated<number>;
  id: string;
  created_at: number;
  completed_at: number | null;
  model: string;
  /** queued, in_progress, completed, incomplete, failed, cancelled. */
  status: string;
  background: number;
  previous_response_id: string | null;
  conversation_id: string | null;
  /** The last item of the conversation the response saw. */
  conversation_seq: number | null;
  /** JSON: the request's settings (what the response object echoes, and what a background rerun needs). */
  request: string;
  /** JSON or null. */
  usage: string | null;
  /** JSON {code, message} or null. */
  error: string | null;
  /** JSON {reason} or null. */
  incomplete_details: string | null;
  /** What it keeps: its row's JSON, its items and its state. */
  bytes: number;
  /** Background runs started (a restart reruns an unfinished one). */
  attempts: number;
}

export interface ResponseItemsTable {
  seq: Generated<number>;
  response_id: string;
  /** 'input' or 'output'. */
  kind: string;
  /** The item's id (a client may send the same id again: not unique). */
  id: string;
  type: string;
  call_id: string | null;
  /** JSON of the item. */
  data: string;
}

export interface ResponseStatesTable {
  response_id: string;
  /** The exact model (id and graph digest) the state came from. */
  model_key: string;
  /** What precedes a conversation's first message (instructions, tools): a state is only continued under the same. */
  context_key: string;
  /** dtype and shape of each tensor (engine/state-blob.ts). */
  layout: string;
  /** Tokens of the conversation the state covers. */
  tokens: number;
  state: Uint8Array;
}

export interface ConversationsTable {
  seq: Generated<number>;
  id: string;
  created_at: number;
  /** JSON object or null. */
  metadata: string | null;
  /** The response whose state covers the conversation's items up to state_seq (null: none does). */
  state_response_id: string | null;
  state_seq: number | null;
}

export interface ConversationItemsTable {
  seq: Generated<number>;
  conversation_id: string;
  id: string;
  type: string;
  call_id: string | null;
  /** The response that added it (null: added through the items API). */
  response_id: string | null;
  data: string;
}

export interface Database {
  files: FilesTable;
  fine_tuning_jobs: FineTuningJobsTable;
  fine_tuning_events: FineTuningEventsTable;
  fine_tuning_checkpoints: FineTuningCheckpointsTable;
  models: ModelsTable;
  responses: ResponsesTable;
  response_items: ResponseItemsTable;
  response_states: ResponseStatesTable;
  conversations: ConversationsTable;
  conversation_items: ConversationItemsTable;
}
