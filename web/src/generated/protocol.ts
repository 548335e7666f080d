// Generated from the Rust types of berth-types (terminal and grid messages) by
// crates/berth-types/tests/web_types.rs: do not edit. Regenerate with
// `BERTH_UPDATE_FIXTURES=1 cargo test -p berth-types --test web_types`.

export type ClientMessage =
  | { cols: number; rows: number; type: "resize" }
  | { type: "ping" };

export type GridClientMessage =
  | { data: string; pane: number; type: "input" }
  | { data: PaneSize; pane: number; type: "resize" }
  | { data: boolean; type: "broadcast" };

export type GridServerMessage =
  | { data: string; pane: number; type: "output" }
  | { data: PaneStatus; pane: number; type: "status" }
  | { data: number; pane: number; type: "exit" }
  | { data: boolean; type: "broadcast" }
  | { data: string; pane?: number | null; type: "error" };

export type MachineId = string;

export type Member = { role: SessionRole; username: Username };

export type PaneSize = { cols: number; rows: number };

export type PaneState = "connecting" | "connected" | "closed";

export type PaneStatus = { state: PaneState; title: string };

export type ServerMessage =
  | { members: Member[]; role: SessionRole; target: TerminalTarget; type: "hello"; workspace?: WorkspaceId | null; you: Username }
  | { members: Member[]; type: "members" }
  | { type: "pong" }
  | { code: number; type: "exit" }
  | { message: string; type: "error" };

export type SessionRole = "viewer" | "peer" | "owner";

export type TerminalTarget =
  | { id: WorkspaceId; kind: "workspace" }
  | { id: MachineId; kind: "machine" };

export type Username = string;

export type WorkspaceId = string;
