//! The one implementation of [`Store`](crate::Store) over SQL, shared by the SQLite and the
//! PostgreSQL backend. The queries are the same text for both (`crate::sql`, `crate::members`,
//! ...); what differs is how a UUID or a timestamp is bound and read, and how a write
//! transaction begins. Each backend module defines those few functions with its own types:
//!
//! - `id(Uuid)`: a UUID as bound (PostgreSQL: `uuid`; SQLite: hyphenated text);
//! - `ts(OffsetDateTime)`, `opt_ts(Option<OffsetDateTime>)`: a timestamp as bound, checked;
//! - `get_uuid`, `get_time`, `get_opt_time`: the same read back from a row;
//! - `begin_write(&pool)`: a transaction that will write (SQLite takes the write lock at once);
//! - `bind_all(query, binds)` and `cell(row, index, column)`: table queries' binds and cells;
//!
//! and then invokes [`sql_store!`] with its store type, row type and name.

/// Expands to the row readers and `impl Store for $store`, using the invoking module's
/// helpers (see the module documentation).
macro_rules! sql_store {
    ($store:ident, $row:ty, $name:literal) => {
        fn workspace_row(row: &$row) -> Result<Workspace, StoreError> {
            Ok(Workspace {
                id: WorkspaceId::from(get_uuid(row, "id")?),
                owner: sql::username(row.try_get("owner")?)?,
                template: row.try_get("template")?,
                state: sql::state(row.try_get("state")?)?,
                container_id: row.try_get("container_id")?,
                persistent: row.try_get("persistent")?,
                network: row.try_get("network")?,
                created_at: get_time(row, "created_at")?,
                started_at: get_opt_time(row, "started_at")?,
                last_activity: get_time(row, "last_activity")?,
                expires_at: get_opt_time(row, "expires_at")?,
                state_reason: row.try_get("state_reason")?,
            })
        }

        fn client_row(row: &$row) -> Result<Client, StoreError> {
            Ok(Client {
                client_id: get_uuid(row, "client_id")?.into(),
                username: sql::username(row.try_get("username")?)?,
                hostname: row.try_get("hostname")?,
                version: row.try_get("version")?,
                first_seen: get_time(row, "first_seen")?,
                last_seen: get_time(row, "last_seen")?,
                last_ip: sql::ip(row.try_get("last_ip")?)?,
                local_workspaces: sql::json(row.try_get("local_workspaces")?)?,
            })
        }

        fn member_row(row: &$row) -> Result<Member, StoreError> {
            Ok(Member {
                workspace: WorkspaceId::from(get_uuid(row, "workspace_id")?),
                username: sql::username(row.try_get("username")?)?,
                role: members::role(row.try_get("role")?)?,
                added_by: sql::username(row.try_get("added_by")?)?,
                added_at: get_time(row, "added_at")?,
            })
        }

        fn recording_row(row: &$row) -> Result<Recording, StoreError> {
            Ok(Recording {
                id: RecordingId::from(get_uuid(row, "id")?),
                workspace: WorkspaceId::from(get_uuid(row, "workspace_id")?),
                owner: sql::username(row.try_get("owner")?)?,
                username: sql::username(row.try_get("username")?)?,
                started_at: get_time(row, "started_at")?,
                ended_at: get_opt_time(row, "ended_at")?,
                path: row.try_get("path")?,
                bytes: recordings::bytes_from_db(row.try_get("bytes")?)?,
                width: recordings::dimension(row.try_get("width")?)?,
                height: recordings::dimension(row.try_get("height")?)?,
            })
        }

        fn session_row(row: &$row) -> Result<WebSession, StoreError> {
            Ok(WebSession {
                id_hash: row.try_get("id_hash")?,
                username: sql::username(row.try_get("username")?)?,
                user_id: sessions::user_id(row.try_get("user_id")?)?,
                password_fingerprint: row.try_get("password_fingerprint")?,
                csrf: row.try_get("csrf")?,
                created_at: get_time(row, "created_at")?,
                last_seen: get_time(row, "last_seen")?,
            })
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn insert_workspace(&self, w: &Workspace) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_WORKSPACE)
                    .bind(id(w.id.as_uuid()))
                    .bind(w.owner.as_str())
                    .bind(&w.template)
                    .bind(w.state.as_str())
                    .bind(&w.container_id)
                    .bind(w.persistent)
                    .bind(&w.network)
                    .bind(ts(w.created_at)?)
                    .bind(opt_ts(w.started_at)?)
                    .bind(ts(w.last_activity)?)
                    .bind(opt_ts(w.expires_at)?)
                    .bind(&w.state_reason)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_workspace(&self, workspace: WorkspaceId) -> Result<Workspace, StoreError> {
                let row = sqlx::query(sql::GET_WORKSPACE)
                    .bind(id(workspace.as_uuid()))
                    .fetch_one(&self.pool)
                    .await?;
                workspace_row(&row)
            }

            async fn list_workspaces(
                &self,
                filter: &WorkspaceFilter,
            ) -> Result<Vec<Workspace>, StoreError> {
                let (text, binds) = sql::list_workspaces(filter);
                let mut query = sqlx::query(AssertSqlSafe(text));
                for value in binds {
                    query = query.bind(value);
                }
                query
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(workspace_row)
                    .collect()
            }

            async fn update_workspace_state(
                &self,
                workspace: WorkspaceId,
                update: &StateUpdate,
            ) -> Result<Workspace, StoreError> {
                let row = sqlx::query(sql::UPDATE_WORKSPACE_STATE)
                    .bind(id(workspace.as_uuid()))
                    .bind(update.state.as_str())
                    .bind(&update.reason)
                    .bind(&update.container_id)
                    .bind(opt_ts(update.started_at)?)
                    .bind(opt_ts(update.expires_at)?)
                    .bind(update.expect.map(WorkspaceState::as_str))
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(row) = row {
                    return workspace_row(&row);
                }
                let now: String = sqlx::query_scalar(sql::WORKSPACE_STATE)
                    .bind(id(workspace.as_uuid()))
                    .fetch_one(&self.pool)
                    .await?;
                Err(sql::cas_conflict(workspace, &now, update))
            }

            async fn touch_workspaces(
                &self,
                touches: &[(WorkspaceId, OffsetDateTime)],
            ) -> Result<u64, StoreError> {
                if touches.is_empty() {
                    return Ok(0);
                }
                let mut tx = begin_write(&self.pool).await?;
                let mut changed = 0;
                for (workspace, at) in touches {
                    changed += sqlx::query(sql::TOUCH_WORKSPACE)
                        .bind(id(workspace.as_uuid()))
                        .bind(ts(*at)?)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(changed)
            }

            async fn delete_workspace(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
                let done = sqlx::query(sql::DELETE_WORKSPACE)
                    .bind(id(workspace.as_uuid()))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn count_workspaces(
                &self,
                owner: &Username,
                states: &[WorkspaceState],
            ) -> Result<u32, StoreError> {
                if states.is_empty() {
                    return Ok(0);
                }
                let (text, binds) = sql::count_workspaces(owner, states);
                let mut query = sqlx::query_scalar(AssertSqlSafe(text));
                for value in binds {
                    query = query.bind(value);
                }
                Ok(sql::count(query.fetch_one(&self.pool).await?))
            }

            async fn record_pings(&self, pings: &[ClientPing]) -> Result<(), StoreError> {
                if pings.is_empty() {
                    return Ok(());
                }
                let mut tx = begin_write(&self.pool).await?;
                for ping in pings {
                    sqlx::query(sql::UPSERT_PING)
                        .bind(id(ping.client_id.as_uuid()))
                        .bind(ping.username.as_str())
                        .bind(&ping.hostname)
                        .bind(&ping.version)
                        .bind(ts(ping.at)?)
                        .bind(ping.ip.to_string())
                        .bind(ping.local_workspaces.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_clients(
                &self,
                username: Option<&Username>,
            ) -> Result<Vec<Client>, StoreError> {
                sqlx::query(sql::LIST_CLIENTS)
                    .bind(username.map(Username::as_str))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(client_row)
                    .collect()
            }

            async fn record_login_attempt(
                &self,
                username: &str,
                ip: IpAddr,
                success: bool,
                at: OffsetDateTime,
            ) -> Result<(), StoreError> {
                check_login_username(username)?;
                sqlx::query(sql::INSERT_LOGIN_ATTEMPT)
                    .bind(username)
                    .bind(ip.to_string())
                    .bind(success)
                    .bind(ts(at)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn recent_failures(
                &self,
                username: &str,
                since: OffsetDateTime,
            ) -> Result<u32, StoreError> {
                let n: i64 = sqlx::query_scalar(sql::RECENT_FAILURES)
                    .bind(username)
                    .bind(ts(since)?)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(sql::count(n))
            }

            async fn prune_login_attempts(
                &self,
                before: OffsetDateTime,
            ) -> Result<u64, StoreError> {
                Ok(sqlx::query(sql::PRUNE_LOGIN_ATTEMPTS)
                    .bind(ts(before)?)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(sql::APPEND_AUDIT)
                    .bind(ts(entry.at)?)
                    .bind(&entry.actor)
                    .bind(&entry.action)
                    .bind(&entry.target)
                    .bind(entry.ip.map(|ip| ip.to_string()))
                    .bind(entry.details.to_string())
                    .bind(entry.outcome.as_str())
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn query_table(
                &self,
                query: &TableQuery,
                scope: Option<&Username>,
            ) -> Result<TableResult, StoreError> {
                let plan = plan::plan(query, scope)?;
                let total: i64 = bind_all(
                    sqlx::query(AssertSqlSafe(plan.count.text.clone())),
                    &plan.count.binds,
                )?
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
                let rows = bind_all(
                    sqlx::query(AssertSqlSafe(plan.select.text.clone())),
                    &plan.select.binds,
                )?
                .fetch_all(&self.pool)
                .await?;
                let rows = rows
                    .iter()
                    .map(|row| {
                        plan.fetched
                            .iter()
                            .enumerate()
                            .map(|(i, column)| cell(row, i, column))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(plan.finish(rows, total))
            }

            async fn put_member(&self, member: &Member) -> Result<(), StoreError> {
                sqlx::query(members::PUT_MEMBER)
                    .bind(id(member.workspace.as_uuid()))
                    .bind(member.username.as_str())
                    .bind(member.role.as_str())
                    .bind(member.added_by.as_str())
                    .bind(ts(member.added_at)?)
                    .execute(&self.pool)
                    .await
                    .map_err(members::put_error)?;
                Ok(())
            }

            async fn remove_member(
                &self,
                workspace: WorkspaceId,
                username: &Username,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(members::REMOVE_MEMBER)
                    .bind(id(workspace.as_uuid()))
                    .bind(username.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn remove_memberships(&self, username: &Username) -> Result<u64, StoreError> {
                let done = sqlx::query(members::REMOVE_MEMBERSHIPS)
                    .bind(username.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn rename_member(
                &self,
                from: &Username,
                to: &Username,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(members::RENAME_MEMBER)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn list_members(
                &self,
                workspace: WorkspaceId,
            ) -> Result<Vec<Member>, StoreError> {
                sqlx::query(members::LIST_MEMBERS)
                    .bind(id(workspace.as_uuid()))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(member_row)
                    .collect()
            }

            async fn member_role(
                &self,
                workspace: WorkspaceId,
                username: &Username,
            ) -> Result<Option<MemberRole>, StoreError> {
                let role: Option<String> = sqlx::query_scalar(members::MEMBER_ROLE)
                    .bind(id(workspace.as_uuid()))
                    .bind(username.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                role.as_deref().map(members::role).transpose()
            }

            async fn insert_recording(&self, r: &Recording) -> Result<(), StoreError> {
                recordings::check_path(&r.path)?;
                sqlx::query(recordings::INSERT_RECORDING)
                    .bind(id(r.id.as_uuid()))
                    .bind(id(r.workspace.as_uuid()))
                    .bind(r.owner.as_str())
                    .bind(r.username.as_str())
                    .bind(ts(r.started_at)?)
                    .bind(opt_ts(r.ended_at)?)
                    .bind(&r.path)
                    .bind(recordings::bytes_to_db(r.bytes)?)
                    .bind(i32::from(r.width))
                    .bind(i32::from(r.height))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn finish_recording(
                &self,
                recording: RecordingId,
                ended_at: OffsetDateTime,
                bytes: u64,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(recordings::FINISH_RECORDING)
                    .bind(id(recording.as_uuid()))
                    .bind(ts(ended_at)?)
                    .bind(recordings::bytes_to_db(bytes)?)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn get_recording(&self, recording: RecordingId) -> Result<Recording, StoreError> {
                let row = sqlx::query(recordings::GET_RECORDING)
                    .bind(id(recording.as_uuid()))
                    .fetch_one(&self.pool)
                    .await?;
                recording_row(&row)
            }

            async fn list_recordings(
                &self,
                workspace: WorkspaceId,
            ) -> Result<Vec<Recording>, StoreError> {
                sqlx::query(recordings::LIST_RECORDINGS)
                    .bind(id(workspace.as_uuid()))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(recording_row)
                    .collect()
            }

            async fn list_all_recordings(&self) -> Result<Vec<Recording>, StoreError> {
                sqlx::query(recordings::LIST_ALL_RECORDINGS)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(recording_row)
                    .collect()
            }

            async fn delete_recording(&self, recording: RecordingId) -> Result<(), StoreError> {
                let done = sqlx::query(recordings::DELETE_RECORDING)
                    .bind(id(recording.as_uuid()))
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn rename_recordings(
                &self,
                from: &Username,
                to: &Username,
            ) -> Result<u64, StoreError> {
                let mut tx = begin_write(&self.pool).await?;
                let mut changed = 0;
                for statement in [recordings::RENAME_OWNER, recordings::RENAME_ATTACHED] {
                    changed += sqlx::query(statement)
                        .bind(from.as_str())
                        .bind(to.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(changed)
            }

            async fn save_sessions(&self, saved: &[WebSession]) -> Result<(), StoreError> {
                if saved.is_empty() {
                    return Ok(());
                }
                let mut tx = begin_write(&self.pool).await?;
                for session in saved {
                    sessions::check_hash(&session.id_hash)?;
                    sqlx::query(sessions::SAVE_SESSION)
                        .bind(&session.id_hash)
                        .bind(session.username.as_str())
                        .bind(session.user_id.map(|u| u.to_string()))
                        .bind(&session.password_fingerprint)
                        .bind(&session.csrf)
                        .bind(ts(session.created_at)?)
                        .bind(ts(session.last_seen)?)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_sessions(&self, id_hashes: &[String]) -> Result<(), StoreError> {
                if id_hashes.is_empty() {
                    return Ok(());
                }
                let mut tx = begin_write(&self.pool).await?;
                for hash in id_hashes {
                    sqlx::query(sessions::DELETE_SESSION)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_sessions(&self) -> Result<Vec<WebSession>, StoreError> {
                let rows = sqlx::query(sessions::LIST_SESSIONS)
                    .fetch_all(&self.pool)
                    .await?;
                // A row that no longer reads (a name a newer rule refuses) is one browser
                // logged out, not all of them.
                Ok(rows
                    .iter()
                    .filter_map(|row| {
                        session_row(row)
                            .map_err(|err| tracing::warn!(error = %err, "skipping an unreadable web session"))
                            .ok()
                    })
                    .collect())
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

pub(crate) use sql_store;
