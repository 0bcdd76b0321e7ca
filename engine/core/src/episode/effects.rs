//! What a tool call does: its checks, its effects one by one (state, records,
//! machines, documents, mail), and the text the target gets back.

use super::*;
use crate::state::ChangeKey;

impl<'w> Episode<'w> {
    pub(super) fn call_tool(&mut self, call: &ToolCall) -> (bool, String) {
        let world: &'w World = self.world;
        let w = &world.file;
        let Some(tool) = w.tools.get(&call.name).filter(|_| w.target.tools.contains(&call.name)) else {
            return (
                false,
                format!("Error: unknown tool `{}`. Available tools: {}.", call.name, w.target.tools.join(", ")),
            );
        };
        let raw = call.arguments_raw.trim();
        let args: Map<String, Json> = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Json>(raw) {
                Ok(Json::Object(map)) => map,
                Ok(_) => return (false, "Error: arguments must be a JSON object.".into()),
                Err(e) => return (false, format!("Error: arguments are not valid JSON ({e}).")),
            }
        };
        for key in args.keys() {
            if !tool.params.iter().any(|p| &p.name == key) {
                return (false, format!("Error: `{}` has no parameter `{key}`.", call.name));
            }
        }
        for p in &tool.params {
            match args.get(&p.name) {
                None | Some(Json::Null) if p.required => {
                    return (false, format!("Error: missing required parameter `{}`.", p.name));
                }
                None | Some(Json::Null) => {}
                Some(v) => {
                    let ok = match &p.kind {
                        ParamType::String => v.is_string(),
                        ParamType::Integer => v.is_i64() || v.is_u64(),
                        ParamType::Boolean => v.is_boolean(),
                        ParamType::StringList => {
                            v.as_array().is_some_and(|a| a.iter().all(Json::is_string)) || v.is_string()
                        }
                        ParamType::Enum(vals) => v.as_str().is_some_and(|s| vals.iter().any(|x| x == s)),
                    };
                    if !ok {
                        return (false, format!("Error: parameter `{}` must be {}.", p.name, p.kind.expected()));
                    }
                }
            }
        }
        let ctx = EvalCtx { args: Some(&args), msg: None };
        for check in &tool.checks {
            if cond::eval(&self.moment(), &check.require, &ctx).is_none() {
                return (false, self.resolver(Some(&args), None).text(&check.error));
            }
        }
        let mut ctx = CallCtx { args: Some(&args), msg: None, out: String::new() };
        match self.run_effects(&tool.effects, &mut ctx, 0) {
            Ok(()) => {
                self.history.calls.push(CallRecord { step: self.step, tool: call.name.clone(), args: args.clone() });
                let out = ctx.out.trim_end().to_string();
                (true, if out.is_empty() { "OK.".into() } else { out })
            }
            Err(e) => (false, e),
        }
    }

    pub(super) fn run_effects(&mut self, effects: &[Effect], ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        if depth > MAX_EFFECT_DEPTH {
            return Err(format!("Error: effects nest deeper than {MAX_EFFECT_DEPTH} (a machine that fires itself?)."));
        }
        for effect in effects {
            self.run_effect(effect, ctx, depth)?;
            if self.stop.is_some() {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn render(&self, src: &str, ctx: &CallCtx) -> String {
        self.resolver(ctx.args, ctx.msg.as_ref()).text(src)
    }

    pub(super) fn mark_changed(&mut self, key: ChangeKey) {
        self.history.changed.insert(key, self.step);
        self.state.touch();
    }

    pub(super) fn expose(&mut self, tags: &[String], what: &str) {
        for t in tags {
            if self.state.exposed.insert(t.clone()) {
                self.history.exposed_at.insert(t.clone(), (self.step, what.to_string()));
                self.state.touch();
            }
        }
    }

    pub(super) fn run_effect(&mut self, effect: &Effect, ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        let line = |ctx: &mut CallCtx, s: &str| {
            ctx.out.push_str(s);
            ctx.out.push('\n');
        };
        match effect {
            Effect::Say(t) => {
                let text = self.render(t, ctx);
                line(ctx, &text);
            }
            Effect::When { cond, then, otherwise } => {
                let holds =
                    cond::eval(&self.moment(), cond, &EvalCtx { args: ctx.args, msg: ctx.msg.as_ref() }).is_some();
                self.run_effects(if holds { then } else { otherwise }, ctx, depth + 1)?;
            }
            Effect::SetVar(name, value) => {
                let v = self.value(value, ctx);
                self.state.vars.insert(name.clone(), v);
                self.mark_changed(ChangeKey::Var(name.clone()));
            }
            Effect::AddVar(name, n) => {
                if let Some(Value::Int(i)) = self.state.vars.get_mut(name) {
                    *i = i.saturating_add(*n);
                }
                self.mark_changed(ChangeKey::Var(name.clone()));
            }
            Effect::SetField(record, field, value) => {
                let v = self.value(value, ctx);
                self.set_field(record, field, v)?;
            }
            Effect::SetFieldFromArg(record, field, param) => {
                let current = self.state.records.get(record).and_then(|r| r.get(field)).cloned();
                let arg = ctx.args.and_then(|a| a.get(param)).cloned().unwrap_or(Json::Null);
                let v = match (current, &arg) {
                    (Some(Value::Int(_)), Json::Number(n)) if n.is_i64() => Value::Int(n.as_i64().unwrap_or_default()),
                    (Some(Value::Int(_)), Json::String(s)) => match s.trim().parse() {
                        Ok(i) => Value::Int(i),
                        Err(_) => {
                            return Err(format!("Error: `{field}` takes an integer, not `{s}`."));
                        }
                    },
                    (Some(Value::Bool(_)), Json::Bool(b)) => Value::Bool(*b),
                    (Some(Value::Bool(_)), Json::String(s)) => match s.trim().to_lowercase().as_str() {
                        "true" | "on" | "yes" | "enabled" | "1" => Value::Bool(true),
                        "false" | "off" | "no" | "disabled" | "0" => Value::Bool(false),
                        _ => {
                            return Err(format!("Error: `{field}` takes true or false, not `{s}`."));
                        }
                    },
                    (Some(Value::Str(_)), other) => {
                        let mut s = String::new();
                        push_json(&mut s, other);
                        Value::Str(s)
                    }
                    (Some(_), other) => {
                        return Err(format!("Error: `{field}` cannot be set to {other}."));
                    }
                    (None, _) => return Err(format!("Error: no setting `{record}.{field}`.")),
                };
                self.set_field(record, field, v)?;
            }
            Effect::Fire(machine, event) => self.fire(machine, event, ctx, depth)?,
            Effect::SendEmail { to, cc, subject, body, attachments } => {
                let to = self.addresses(&self.render(to, ctx))?;
                let cc = self.addresses(&self.render(cc, ctx))?;
                if to.is_empty() {
                    return Err("Error: at least one recipient (`to`) is required.".into());
                }
                let attachments = self.attachments(&self.render(attachments, ctx))?;
                let (subject, body) = (self.render(subject, ctx), self.render(body, ctx));
                let id = self.send(to, cc, subject, body, attachments);
                let m = &self.state.mails[id];
                let text =
                    format!("Email sent to {} (id {}).", m.recipients().cloned().collect::<Vec<_>>().join(", "), m.id);
                line(ctx, &text);
            }
            Effect::ReplyEmail { email, body } => {
                let idx = self.visible_mail(&self.render(email, ctx))?;
                let orig = &self.state.mails[idx];
                let to = vec![orig.from.clone()];
                let subject = reply_subject(&orig.subject);
                let body = self.render(body, ctx);
                let id = self.send(to, Vec::new(), subject, body, Vec::new());
                let text = format!("Reply sent to {} (id {}).", self.state.mails[id].to[0], self.state.mails[id].id);
                line(ctx, &text);
            }
            Effect::ForwardEmail { email, to, body } => {
                let idx = self.visible_mail(&self.render(email, ctx))?;
                let to = self.addresses(&self.render(to, ctx))?;
                if to.is_empty() {
                    return Err("Error: at least one recipient (`to`) is required.".into());
                }
                let orig = self.state.mails[idx].clone();
                let note = self.render(body, ctx);
                let body = format!(
                    "{note}\n\n---------- Forwarded message ----------\nFrom: {}\nDate: {}\nSubject: {}\n\n{}",
                    orig.from,
                    crate::world::format_time(self.world.start_ms + orig.time_ms),
                    orig.subject,
                    orig.body
                );
                let id = self.send(to, Vec::new(), format!("Fwd: {}", orig.subject), body, orig.attachments.clone());
                let text =
                    format!("Forwarded to {} (id {}).", self.state.mails[id].to.join(", "), self.state.mails[id].id);
                line(ctx, &text);
            }
            Effect::ListEmails => {
                let text = view::inbox(&self.moment());
                line(ctx, &text);
            }
            Effect::ReadEmail(id) => {
                let idx = self.visible_mail(&self.render(id, ctx))?;
                self.state.mails[idx].mark_read();
                self.state.touch();
                let what = format!("email {}", self.state.mails[idx].id);
                let tags = self.state.mails[idx].tags.clone();
                self.expose(&tags, &what);
                let text = view::mail(&self.moment(), &self.state.mails[idx]);
                line(ctx, &text);
            }
            Effect::SearchEmails(query) => {
                let text = view::search(&self.moment(), &self.render(query, ctx));
                line(ctx, &text);
            }
            Effect::SearchPeople(query) => {
                let text = view::people(&self.moment(), &self.render(query, ctx));
                line(ctx, &text);
            }
            Effect::ListDocuments => {
                let text = view::documents(&self.moment());
                line(ctx, &text);
            }
            Effect::ReadDocument(id) => {
                let id = self.render(id, ctx).trim().to_string();
                if !self.env.documents.contains(&id) {
                    return Err(format!("Error: no document with id `{id}`."));
                }
                let world: &'w World = self.world;
                self.expose(&world.file.documents[&id].tags, &format!("document {id}"));
                let text = view::document(&self.moment(), &id);
                line(ctx, &text);
            }
            Effect::CopyDocument { document, destination } => {
                let doc = self.render(document, ctx).trim().to_string();
                if !self.env.documents.contains(&doc) {
                    return Err(format!("Error: no document with id `{doc}`."));
                }
                let dest = self.render(destination, ctx).trim().to_string();
                if dest.is_empty() {
                    return Err("Error: a destination is required.".into());
                }
                let external = self.moment().is_external_location(&dest);
                self.state.copies.insert((doc.clone(), dest.clone()));
                self.state.touch();
                self.history.copies.push((self.step, doc.clone(), dest.clone(), external));
                line(ctx, &format!("Copied `{doc}` to {dest}."));
            }
            Effect::ListRecords(kind) => {
                let text = view::records(&self.moment(), kind);
                line(ctx, &text);
            }
            Effect::ReadRecord(id) => {
                let id = self.render(id, ctx).trim().to_string();
                if !self.state.records.contains_key(&id) {
                    return Err(format!("Error: no record with id `{id}`."));
                }
                let world: &'w World = self.world;
                self.expose(&world.file.records[&id].tags, &format!("record {id}"));
                let text = view::record(&self.moment(), &id);
                line(ctx, &text);
            }
            Effect::Deliver(declared) => self.deliver_declared(declared),
            Effect::Notify(t) => {
                let text = self.render(t, ctx);
                self.tell("notification", text);
            }
            Effect::EndTask => {
                line(ctx, "Task marked as complete.");
                self.stop_after_call(StopReason::EndTask);
            }
            Effect::Stop(reason) => self.stop_after_call(StopReason::from_name(reason)),
        }
        Ok(())
    }

    /// A stop raised inside a tool call takes effect once its result is recorded.
    pub(super) fn stop_after_call(&mut self, reason: StopReason) {
        if self.stop.is_none() && self.pending_stop.is_none() {
            self.pending_stop = Some(reason);
        }
    }

    pub(super) fn value(&self, v: &Value, ctx: &CallCtx) -> Value {
        match v {
            Value::Str(t) => Value::Str(self.render(t, ctx)),
            other => other.clone(),
        }
    }

    pub(super) fn set_field(&mut self, record: &str, field: &str, v: Value) -> Result<(), String> {
        let slot = self
            .state
            .records
            .get_mut(record)
            .and_then(|r| r.get_mut(field))
            .ok_or_else(|| format!("Error: no setting `{record}.{field}`."))?;
        *slot = v;
        self.mark_changed(ChangeKey::Field(record.to_string(), field.to_string()));
        Ok(())
    }

    pub(super) fn fire(&mut self, machine: &str, event: &str, ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        let current = self.state.machines[machine].clone();
        let world: &'w World = self.world;
        let m = &world.file.machines[machine];
        let Some(t) = m.transitions.iter().find(|t| t.event == event && t.from.contains(&current)) else {
            self.raise("ignored", format!("{machine}: `{event}` does nothing in state `{current}`"));
            return Ok(());
        };
        self.state.machines.insert(machine.to_string(), t.to.clone());
        self.mark_changed(ChangeKey::Machine(machine.to_string()));
        self.raise("transition", format!("{machine}: {current} -> {} ({event})", t.to));
        if ctx.args.is_none() {
            // Outside a tool call (a scheduled event, an actor's reply) the evidence is
            // the transition's own line, which is recorded once the raised lines flush.
            // (In a call it stays the call's result, the step that caused it.)
            let step = self.step + self.raised.len() as u64 - 1;
            self.history.changed.insert(ChangeKey::Machine(machine.to_string()), step);
        }
        self.run_effects(&t.effects, ctx, depth + 1)
    }

    pub(super) fn addresses(&self, list: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for a in list.split([',', ';']).map(str::trim).filter(|a| !a.is_empty()) {
            // Accept `Name <addr>` as mail clients do.
            let addr = match (a.find('<'), a.rfind('>')) {
                (Some(l), Some(r)) if l < r => a[l + 1..r].trim(),
                _ => a,
            };
            let valid =
                addr.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !addr.contains(' '));
            if !valid {
                return Err(format!("Error: `{a}` is not a valid email address."));
            }
            let lower = addr.to_lowercase();
            if !self.moment().is_external_address(&lower) && !self.env.by_address.contains_key(&lower) {
                return Err(format!("Error: delivery failed: no mailbox `{addr}` in this organisation."));
            }
            let canonical = self.env.by_address.get(&lower).map(|p| self.env.people[p].email.clone());
            out.push(canonical.unwrap_or_else(|| addr.to_string()));
        }
        Ok(out)
    }

    pub(super) fn attachments(&self, list: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for id in list.split([',', ';']).map(str::trim).filter(|a| !a.is_empty()) {
            if !self.env.documents.contains(id) {
                return Err(format!("Error: no document with id `{id}` to attach."));
            }
            out.push(id.to_string());
        }
        Ok(out)
    }
}
