//! The life of one alert series (rule, site, page, form factor):
//! `ok -> pending -> firing -> resolved`, plus `insufficient_data` when the
//! window holds fewer reports than the rule's minimum. Pure functions: the
//! engine feeds in each evaluation's [`Level`] and persists what comes out.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Pending,
    Firing,
    Resolved,
    InsufficientData,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Ok,
        State::Pending,
        State::Firing,
        State::Resolved,
        State::InsufficientData,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
            State::InsufficientData => "insufficient_data",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where one evaluation puts the page against the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Fewer reports than the rule's minimum: no decision.
    Insufficient,
    /// The condition holds (p75 above the threshold).
    Above,
    /// Not above, but not below the threshold by the resolve margin yet: a
    /// firing alert keeps firing (hysteresis).
    Between,
    /// Below the threshold by at least the margin.
    Below,
}

/// The persisted part of a series' state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub state: State,
    /// When `state` was entered.
    pub since_ms: i64,
    /// When the condition started holding (pending or firing).
    pub pending_since_ms: Option<i64>,
    /// When the current (or last) firing episode started.
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    /// The last firing notification of this episode, first or repeat.
    pub last_notified_ms: Option<i64>,
    /// Firing notifications sent in this episode; a resolved notification
    /// is sent only if there was one.
    pub notifications: u32,
}

impl Machine {
    pub fn new(now_ms: i64) -> Machine {
        Machine {
            state: State::Ok,
            since_ms: now_ms,
            pending_since_ms: None,
            fired_at_ms: None,
            resolved_at_ms: None,
            last_notified_ms: None,
            notifications: 0,
        }
    }
}

/// One evaluation's inputs besides the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    pub now_ms: i64,
    pub level: Level,
    /// How long the condition must hold before firing.
    pub for_ms: i64,
    /// Re-notify a still-firing alert this often; 0: never.
    pub repeat_interval_ms: i64,
    /// A silence matches: no firing notifications (a resolved one still
    /// closes what was sent).
    pub silenced: bool,
    /// Acknowledged in this episode: no repeats.
    pub acknowledged: bool,
}

/// A notification to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// `repeat` false for the episode's first.
    Firing {
        repeat: bool,
    },
    Resolved,
}

/// What one evaluation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub machine: Machine,
    /// `(from, to)` when the state changed.
    pub transition: Option<(State, State)>,
    pub notify: Option<Notify>,
}

/// Advances the machine by one evaluation.
pub fn step(cur: &Machine, i: &Inputs) -> Step {
    let now = i.now_ms;
    let mut m = cur.clone();
    let mut notify = None;
    let enter = |m: &mut Machine, s: State| {
        m.state = s;
        m.since_ms = now;
    };
    let fire = |m: &mut Machine| {
        m.state = State::Firing;
        m.since_ms = now;
        m.fired_at_ms = Some(now);
        m.resolved_at_ms = None;
        m.last_notified_ms = None;
        m.notifications = 0;
    };
    match (cur.state, i.level) {
        (State::Firing, Level::Above | Level::Between) => {}
        (State::Firing, Level::Below | Level::Insufficient) => {
            // Too few samples never keeps an alert firing: it ends, saying why.
            enter(
                &mut m,
                if i.level == Level::Below {
                    State::Resolved
                } else {
                    State::InsufficientData
                },
            );
            m.resolved_at_ms = Some(now);
            m.pending_since_ms = None;
            if cur.notifications > 0 {
                notify = Some(Notify::Resolved);
            }
        }
        (State::Pending, Level::Above) => {
            let since = cur.pending_since_ms.unwrap_or(now);
            if now - since >= i.for_ms {
                fire(&mut m);
            }
        }
        (_, Level::Above) => {
            m.pending_since_ms = Some(now);
            if i.for_ms <= 0 {
                fire(&mut m);
            } else {
                enter(&mut m, State::Pending);
            }
        }
        (State::InsufficientData, Level::Insufficient) => {}
        (_, Level::Insufficient) => {
            m.pending_since_ms = None;
            enter(&mut m, State::InsufficientData);
        }
        // Not above; outside firing the margin does not matter.
        (State::Pending | State::InsufficientData, Level::Between | Level::Below) => {
            m.pending_since_ms = None;
            enter(&mut m, State::Ok);
        }
        // A resolved alert stays resolved (and shown as such) until it
        // breaches again.
        (State::Ok | State::Resolved, Level::Between | Level::Below) => {}
    }
    if m.state == State::Firing && !i.silenced {
        let due = match m.last_notified_ms {
            None => Some(false),
            Some(last) => {
                (!i.acknowledged && i.repeat_interval_ms > 0 && now - last >= i.repeat_interval_ms).then_some(true)
            }
        };
        if let Some(repeat) = due {
            notify = Some(Notify::Firing { repeat });
            m.last_notified_ms = Some(now);
            m.notifications += 1;
        }
    }
    Step {
        transition: (m.state != cur.state).then_some((cur.state, m.state)),
        machine: m,
        notify,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// Runs levels through the machine one minute apart; returns the
    /// notifications with the minute they happened at, and the machine.
    fn run(levels: &[Level], for_ms: i64, repeat_ms: i64) -> (Vec<(i64, Notify)>, Machine) {
        run_with(levels, for_ms, repeat_ms, |_| (false, false))
    }

    fn run_with(
        levels: &[Level],
        for_ms: i64,
        repeat_ms: i64,
        flags: impl Fn(i64) -> (bool, bool),
    ) -> (Vec<(i64, Notify)>, Machine) {
        let mut m = Machine::new(0);
        let mut out = vec![];
        for (minute, &level) in levels.iter().enumerate() {
            let minute = minute as i64 + 1;
            let (silenced, acknowledged) = flags(minute);
            let s = step(
                &m,
                &Inputs {
                    now_ms: minute * MIN,
                    level,
                    for_ms,
                    repeat_interval_ms: repeat_ms,
                    silenced,
                    acknowledged,
                },
            );
            if let Some(n) = s.notify {
                out.push((minute, n));
            }
            m = s.machine;
        }
        (out, m)
    }

    use Level::*;
    const FIRST: Notify = Notify::Firing { repeat: false };
    const REPEAT: Notify = Notify::Firing { repeat: true };

    #[test]
    fn fires_after_for_and_resolves_once() {
        let (n, m) = run(&[Below, Above, Above, Above, Above, Below, Below], 2 * MIN, 0);
        // Above from minute 2; held 2 minutes at minute 4.
        assert_eq!(n, vec![(4, FIRST), (6, Notify::Resolved)]);
        assert_eq!(m.state, State::Resolved);
        assert_eq!((m.fired_at_ms, m.resolved_at_ms), (Some(4 * MIN), Some(6 * MIN)));
    }

    #[test]
    fn pending_that_does_not_last_never_fires() {
        let (n, m) = run(&[Above, Above, Below, Above, Between, Above], 3 * MIN, 0);
        assert!(n.is_empty(), "{n:?}");
        assert_eq!(m.state, State::Pending);
        assert_eq!(m.pending_since_ms, Some(6 * MIN));
    }

    #[test]
    fn for_zero_fires_at_once() {
        let s = step(
            &Machine::new(0),
            &Inputs {
                now_ms: 5,
                level: Above,
                for_ms: 0,
                repeat_interval_ms: 0,
                silenced: false,
                acknowledged: false,
            },
        );
        assert_eq!(s.transition, Some((State::Ok, State::Firing)));
        assert_eq!(s.notify, Some(FIRST));
    }

    #[test]
    fn hysteresis_keeps_firing_between_the_thresholds() {
        let (n, m) = run(&[Above, Between, Between, Above, Between, Below], 0, 0);
        assert_eq!(n, vec![(1, FIRST), (6, Notify::Resolved)]);
        assert_eq!(m.state, State::Resolved);
    }

    #[test]
    fn repeats_at_the_interval_only() {
        let (n, _) = run(&[Above; 10], 0, 3 * MIN);
        assert_eq!(n, vec![(1, FIRST), (4, REPEAT), (7, REPEAT), (10, REPEAT)]);
    }

    #[test]
    fn insufficient_data_never_fires_and_ends_a_firing_alert() {
        let (n, m) = run(&[Insufficient; 5], 0, 0);
        assert!(n.is_empty());
        assert_eq!(m.state, State::InsufficientData);
        let (n, m) = run(&[Above, Above, Insufficient, Above], 0, 0);
        assert_eq!(n, vec![(1, FIRST), (3, Notify::Resolved), (4, FIRST)]);
        assert_eq!(m.state, State::Firing);
        assert_eq!(m.fired_at_ms, Some(4 * MIN), "a new episode");
        // A pending condition is forgotten.
        let (n, m) = run(&[Above, Insufficient, Above, Above], 2 * MIN, 0);
        assert!(n.is_empty());
        assert_eq!((m.state, m.pending_since_ms), (State::Pending, Some(3 * MIN)));
    }

    #[test]
    fn silences_hold_back_firing_notifications() {
        // Silenced minutes 1-3: the first notification waits for minute 4.
        let (n, _) = run_with(&[Above; 5], 0, 0, |min| (min <= 3, false));
        assert_eq!(n, vec![(4, FIRST)]);
        // Silenced throughout: fired and resolved without a word.
        let (n, m) = run_with(&[Above, Above, Below], 0, 0, |_| (true, false));
        assert!(n.is_empty());
        assert_eq!(m.state, State::Resolved);
        // Silenced after the first notification: the resolved one still goes.
        let (n, _) = run_with(&[Above, Above, Below], 0, MIN, |min| (min >= 2, false));
        assert_eq!(n, vec![(1, FIRST), (3, Notify::Resolved)]);
    }

    #[test]
    fn acknowledged_alerts_do_not_repeat() {
        let (n, _) = run_with(&[Above, Above, Above, Above, Below], 0, MIN, |min| (false, min >= 3));
        assert_eq!(n, vec![(1, FIRST), (2, REPEAT), (5, Notify::Resolved)]);
    }

    #[test]
    fn resolved_stays_until_the_next_breach() {
        let (_, m) = run(&[Above, Below, Below, Between], 0, 0);
        assert_eq!((m.state, m.since_ms), (State::Resolved, 2 * MIN));
        let (n, m) = run(&[Above, Below, Above], 0, 0);
        assert_eq!(n, vec![(1, FIRST), (2, Notify::Resolved), (3, FIRST)]);
        assert_eq!((m.state, m.notifications), (State::Firing, 1));
        let (_, m) = run(&[Insufficient, Below], 0, 0);
        assert_eq!(m.state, State::Ok);
    }

    /// Whatever the inputs: one first notification per episode, a resolved
    /// one only after a firing one, never firing on too few samples.
    #[test]
    fn invariants_under_random_inputs() {
        let mut rng = crate::testutil::Rng::new(7);
        for _ in 0..2_000 {
            let mut m = Machine::new(0);
            let (mut open, mut sent_in_episode) = (false, false);
            for t in 1..60 {
                let level = [Above, Between, Below, Insufficient][rng.below(4) as usize];
                let i = Inputs {
                    now_ms: t * 1000,
                    level,
                    for_ms: rng.below(4) as i64 * 1000,
                    repeat_interval_ms: rng.below(5) as i64 * 1000,
                    silenced: rng.below(4) == 0,
                    acknowledged: rng.below(3) == 0,
                };
                let s = step(&m, &i);
                if level == Insufficient {
                    assert_ne!(s.machine.state, State::Firing);
                }
                match s.notify {
                    Some(Notify::Firing { repeat }) => {
                        assert_eq!(s.machine.state, State::Firing);
                        assert!(!i.silenced);
                        assert_eq!(repeat, sent_in_episode);
                        open = true;
                        sent_in_episode = true;
                    }
                    Some(Notify::Resolved) => {
                        assert!(open, "resolved without firing");
                        assert_ne!(s.machine.state, State::Firing);
                        open = false;
                    }
                    None => {}
                }
                if s.transition.is_some_and(|(_, to)| to == State::Firing) {
                    sent_in_episode = s.notify.is_some();
                    open = open || sent_in_episode;
                }
                if s.machine.state != State::Firing {
                    assert!(!open, "an episode ended without a resolved notification");
                    sent_in_episode = false;
                }
                m = s.machine;
            }
        }
    }
}
