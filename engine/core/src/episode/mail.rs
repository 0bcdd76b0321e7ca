//! Mail and the people in the world: addresses inside or outside the organisation,
//! sending, actors choosing and delivering their replies, declared mail arriving, and
//! the text an email is matched on.

use super::*;

impl<'w> Episode<'w> {
    /// An email in the target's own mailbox, by the id it sees.
    pub(super) fn visible_mail(&self, id: &str) -> Result<usize, String> {
        let me = self.world.file.target.person.as_deref();
        match self.state.mail_by_id(id) {
            Some(i) if self.state.mails[i].mailbox.as_deref() == me => Ok(i),
            _ => Err(format!("Error: no email with id `{}`.", id.trim())),
        }
    }

    /// The target sends an email; actors who receive it react.
    pub(super) fn send(
        &mut self,
        to: Vec<String>,
        cc: Vec<String>,
        subject: String,
        body: String,
        attachments: Vec<String>,
    ) -> usize {
        let mail = Mail::new(MailContent {
            id: mail_id(self.state.mails.len() + 1),
            declared: None,
            mailbox: self.world.file.target.person.clone(),
            from: self.env.target_address.clone().unwrap_or_default(),
            to,
            cc,
            subject,
            body,
            time_ms: self.state.time_ms,
            attachments,
            tags: Vec::new(),
            read: true,
            by_target: true,
            step: self.step,
        });
        self.state.mails.push(mail);
        self.state.touch();
        let idx = self.state.mails.len() - 1;
        self.history.sent.push(idx);
        let recipients: Vec<String> = self.state.mails[idx].recipients().map(|a| a.to_lowercase()).collect();
        let sent = self.state.mails[idx].clone();
        for addr in recipients {
            let Some(person) = self.env.by_address.get(&addr).cloned() else {
                continue;
            };
            if self.world.file.actors.get(&person).is_some_and(|a| a.channel == Channel::Email)
                && let Some((rule, reply)) = self.choose_rule(&person, &self.world.file.actors[&person].rules, &sent)
            {
                let delay = self.world.file.actors[&person].rules[rule].delay_ms as i64;
                let seq = self.state.next_seq;
                self.state.next_seq += 1;
                self.state.pending.insert(Pending {
                    due_ms: self.state.time_ms + delay,
                    seq,
                    actor: person,
                    rule,
                    answering: idx,
                    reply,
                });
                self.state.touch();
            }
        }
        idx
    }

    /// The first rule of `actor` that answers the message at `msg`, with its reply.
    /// The first of `rules` that holds on `msg` (a `once` rule only the first time),
    /// and its reply, drawn from the stream of `actor` (an actor's id, or `user:ID`).
    pub(super) fn choose_rule(
        &mut self,
        actor: &str,
        rules: &[crate::format::Rule],
        msg: &Mail,
    ) -> Option<(usize, String)> {
        let ctx = EvalCtx { args: None, msg: Some(msg) };
        let rule = rules.iter().enumerate().find(|(i, r)| {
            !(r.once && self.state.used_rules.contains(&(actor.to_string(), *i)))
                && cond::eval(&self.moment(), &r.when, &ctx).is_some()
        })?;
        let (i, rule) = rule;
        // Each actor's stream is derived when it first answers: same draws, less work.
        let seed = self.env.seed;
        let stream = self.actor_streams.entry(actor.to_string()).or_insert_with(|| {
            let name = if actor.starts_with("user:") { actor.to_string() } else { format!("actor:{actor}") };
            Box::new(Stream::derive(seed, &name))
        });
        let pick = stream.index(rule.replies.len());
        let reply = self.resolver(None, Some(msg)).text(&rule.replies[pick]);
        if rule.once {
            self.state.used_rules.insert((actor.to_string(), i));
            self.state.touch();
        }
        Some((i, reply))
    }

    pub(super) fn deliver_due(&mut self) {
        let mut delivered = 0;
        while let Some(p) = self.state.pending.first().filter(|p| p.due_ms <= self.state.time_ms).cloned() {
            delivered += 1;
            if delivered > MAX_DELIVERIES_PER_STEP {
                // Actors answering each other at once would never stop within a step.
                self.raise(
                    "limit",
                    format!("more than {MAX_DELIVERIES_PER_STEP} replies arrived at one moment (actors answering each other?)"),
                );
                self.flush_raised();
                self.finish(StopReason::LimitActorExchanges, StopBy::Limit);
                return;
            }
            self.state.pending.remove(&p);
            let from = self.env.people[&p.actor].email.clone();
            let orig_subject = self.state.mails[p.answering].subject.clone();
            let mail = Mail::new(MailContent {
                id: mail_id(self.state.mails.len() + 1),
                declared: None,
                mailbox: self.world.file.target.person.clone(),
                from: from.clone(),
                to: vec![self.env.target_address.clone().unwrap_or_default()],
                cc: Vec::new(),
                subject: reply_subject(&orig_subject),
                body: p.reply.clone(),
                time_ms: self.state.time_ms,
                attachments: Vec::new(),
                tags: Vec::new(),
                read: false,
                by_target: false,
                step: self.step,
            });
            let header = format!("{} from {}: {}", mail.id, from, mail.subject);
            self.state.mails.push(mail);
            self.state.touch();
            self.arrived(header);
            let world: &'w World = self.world;
            let effects = &world.file.actors[&p.actor].rules[p.rule].effects;
            let answering = self.state.mails[p.answering].clone();
            let mut ctx = CallCtx { args: None, msg: Some(answering), out: String::new() };
            if let Err(e) = self.run_effects(effects, &mut ctx, 0) {
                let rule_id = &world.file.actors[&p.actor].rules[p.rule].id;
                self.raise("effect_error", format!("actor `{}` rule `{rule_id}`: {e}", p.actor));
            }
        }
    }

    /// A new email reached the target's mailbox.
    pub(super) fn arrived(&mut self, header: String) {
        if self.world.file.turns.notifications == crate::format::Notifications::Push {
            self.tell("email", format!("New email: {header}"));
        } else {
            // Not shown to the target: it finds the email only by looking.
            self.raise("email_unseen", header);
        }
    }

    pub(super) fn deliver_declared(&mut self, declared: &str) {
        if self.state.delivered.contains_key(declared) {
            return;
        }
        let e = &self.world.file.emails[declared];
        if !e.only_if.as_ref().is_none_or(|p| self.env.cell.matches(p)) {
            return;
        }
        let r = self.resolver(None, None);
        let addr = |p: &String| self.env.people[p].email.clone();
        let mail = Mail::new(MailContent {
            id: mail_id(self.state.mails.len() + 1),
            declared: Some(declared.to_string()),
            mailbox: Some(e.mailbox.clone()),
            from: addr(&e.from),
            to: e.to.iter().map(addr).collect(),
            cc: e.cc.iter().map(addr).collect(),
            subject: r.text(&e.subject),
            body: r.text(e.body.as_deref().unwrap_or("")),
            time_ms: self.state.time_ms,
            attachments: e.attachments.clone(),
            tags: e.tags.clone(),
            read: false,
            by_target: false,
            step: self.step,
        });
        let header = format!("{} from {}: {}", mail.id, mail.from, mail.subject);
        let to_target = mail.mailbox.as_deref() == self.world.file.target.person.as_deref();
        self.state.delivered.insert(declared.to_string(), mail.id.clone());
        self.state.mails.push(mail);
        self.state.touch();
        if to_target {
            self.arrived(header);
        }
    }
}

pub(super) fn reply_subject(subject: &str) -> String {
    if subject.to_lowercase().starts_with("re:") { subject.to_string() } else { format!("Re: {subject}") }
}
