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

export interface BatchesTable {
  seq: Generated<number>;
  id: string;
  created_at: number;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  /** JSON object or null. */
  metadata: string | null;
  /** Seconds after their creation that the output and error files expire; null: never. */
  output_expires_after: number | null;
  status: string;
  /** Where finalizing or cancelling leads: completed, expired, failed or cancelled (recorded with the transition into it). */
  outcome: string | null;
  /** JSON array of {code, message, param, line}, or null. */
  errors: string | null;
  /** The model every line names, when they all name the same one. */
  model: string | null;
  /** Reserved when the batch starts finalizing; the file exists once the batch has finished. */
  output_file_id: string | null;
  error_file_id: string | null;
  total: number;
  completed: number;
  failed: number;
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  expires_at: number;
  in_progress_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
}

export interface BatchResultsTable {
  seq: Generated<number>;
  batch_id: string;
  /** The input file's line (1-based). */
  line: number;
  /** 'output' or 'error': the file the line goes to. */
  kind: string;
  /** The output line, JSON. */
  text: string;
}

/** An eval: its data source config and testing criteria, as normalised at creation (JSON). */
export interface EvalsTable {
  seq: Generated<number>;
  id: string;
  created_at: number;
  updated_at: number;
  name: string;
  /** JSON object or null. */
  metadata: string | null;
  /** JSON: {type: "custom", item_schema, include_sample_schema}. */
  data_source_config: string;
  /** JSON array: the criteria as given, each with the id the server gave it. */
  testing_criteria: string;
}

export interface EvalRunsTable {
  seq: Generated<number>;
  id: string;
  eval_id: string;
  created_at: number;
  name: string;
  /** The model sampled ('' for a jsonl data source). */
  model: string;
  status: string;
  /** JSON: the data source as requested. */
  data_source: string;
  /** JSON object or null. */
  metadata: string | null;
  /** JSON {code, message} or null. */
  error: string | null;
  /** JSON: the run's counters, updated in the same transaction as each item's result. */
  result_counts: string;
  per_model_usage: string;
  per_testing_criteria_results: string;
  /** 1 once every item of the data source has its row. */
  items_ready: number;
  /** How many times a worker took the run up (a restart resumes it). */
  attempts: number;
}

export interface EvalRunItemsTable {
  seq: Generated<number>;
  id: string;
  run_id: string;
  eval_id: string;
  created_at: number;
  /** The item's position in the data source (datasource_item_id). */
  item_index: number;
  /** 'pending' until graded, then 'pass', 'fail' or 'error'. */
  status: string;
  /** JSON: {item, sample?} as the data source gave it; null when the line was not valid JSON. */
  source: string | null;
  /** JSON: why the item could not be read, or null. */
  source_error: string | null;
  /** JSON: the output item's sample, once graded. */
  sample: string | null;
  /** JSON array: one result per testing criterion, once graded. */
  results: string | null;
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
  batches: BatchesTable;
  batch_results: BatchResultsTable;
  evals: EvalsTable;
  eval_runs: EvalRunsTable;
  eval_run_items: EvalRunItemsTable;
  responses: ResponsesTable;
  response_items: ResponseItemsTable;
  response_states: ResponseStatesTable;
  conversations: ConversationsTable;
  conversation_items: ConversationItemsTable;
}
