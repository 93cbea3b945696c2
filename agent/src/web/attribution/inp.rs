//! INP attribution in the page: event entries grouped by frame as they
//! are processed, long animation frames as they arrive, the target named
//! when an interaction becomes a candidate, the rest at each report.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, WeakMap};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{PerformanceEntry, PerformanceObserver};

use super::bindings::{EventEntry, LoafEntry, ScriptEntry};
use super::{load_state, Attribution, InpAttribution, LongestScript, Options};
use crate::attribution::inp::{inp_parts, interaction_type, loaf_summary, EventTimes, Frames, LoafTimes, ScriptTimes};
use crate::inp::LongestInteractions;
use crate::web::observe::{entries as entries_of, observe, Batch, Group};
use crate::web::page::when_idle_or_hidden;

struct Inner {
    options: Options,
    frames: Frames<PerformanceEntry, LoafEntry>,
    /// Entry (with an interaction id) -> its frame's id.
    entry_frames: WeakMap,
    /// Interaction id -> its target, for the current candidates.
    targets: Vec<(u64, String)>,
    /// The frames of the longest interactions, after the last batch.
    wanted: Vec<u64>,
    /// The frame of the last report.
    reported: Option<u64>,
    cleanup_pending: bool,
    /// The long animation frame observer, for its records not delivered yet.
    loafs: Option<PerformanceObserver>,
}

/// One `onINP` registration's attribution state.
#[derive(Clone)]
pub struct InpTracker(Rc<RefCell<Inner>>);

fn times(e: &EventEntry) -> EventTimes {
    EventTimes {
        start_time: e.start_time(),
        duration: e.duration(),
        processing_start: e.processing_start(),
        processing_end: e.processing_end(),
    }
}

fn loaf_times(l: &LoafEntry) -> LoafTimes {
    let scripts = l.scripts();
    LoafTimes {
        start_time: l.start_time(),
        duration: l.duration(),
        style_and_layout_start: l.style_and_layout_start(),
        scripts: (0..scripts.length())
            .map(|i| {
                let s: ScriptEntry = scripts.get(i).unchecked_into();
                ScriptTimes {
                    start_time: s.start_time(),
                    duration: s.duration(),
                    forced_style_and_layout_duration: s.forced_style_and_layout_duration(),
                }
            })
            .collect(),
    }
}

impl InpTracker {
    /// Starts observing long animation frames, as the reference does when
    /// `onINP` is called.
    pub fn new(options: Options) -> InpTracker {
        let t = InpTracker(Rc::new(RefCell::new(Inner {
            options,
            frames: Frames::default(),
            entry_frames: WeakMap::new(),
            targets: Vec::new(),
            wanted: Vec::new(),
            reported: None,
            cleanup_pending: false,
            loafs: None,
        })));
        let on_loafs = t.clone();
        let po = observe(Group::LongAnimationFrame, None, move |entries, _| {
            on_loafs.add_loafs(entries)
        });
        t.0.borrow_mut().loafs = po;
        t
    }

    fn add_loafs(&self, entries: Batch) {
        if entries.is_empty() {
            return;
        }
        self.0.borrow_mut().frames.add_loafs(entries.into_iter().map(|e| {
            let l: LoafEntry = e.unchecked_into();
            (l.start_time(), l.duration(), l)
        }));
        self.queue_cleanup();
    }

    fn queue_cleanup(&self) {
        if std::mem::replace(&mut self.0.borrow_mut().cleanup_pending, true) {
            return;
        }
        let t = self.clone();
        when_idle_or_hidden(move || {
            let mut i = t.0.borrow_mut();
            let mut named = i.wanted.clone();
            named.extend(i.reported);
            let wanted = i.wanted.clone();
            i.frames.cleanup(&wanted, &named);
            i.cleanup_pending = false;
        });
    }

    /// Before an event entry is processed: into its frame.
    pub fn before_entry(&self, entry: &PerformanceEntry) {
        {
            let mut i = self.0.borrow_mut();
            let e: &EventEntry = entry.unchecked_ref();
            let keep = i.options.include_processed_event_entries.then(|| entry.clone());
            let id = i.frames.add_event(times(e), keep);
            if e.interaction_id().unwrap_or(0.0) != 0.0 {
                i.entry_frames.set(entry.unchecked_ref(), &JsValue::from(id as f64));
            }
        }
        self.queue_cleanup();
    }

    /// After an entry of interaction `id` was processed: where it is a
    /// candidate without a name yet, its target (the first entry's with
    /// a target node, else the first `targetSelector`).
    pub fn after_entry<E: JsCast>(&self, longest: &LongestInteractions<E>, id: u64) {
        let Some(interaction) = longest.get(id) else { return };
        let mut i = self.0.borrow_mut();
        // An empty name (a `generateTarget` returning "") is looked for
        // again, as the reference's falsy check does.
        if i.targets.iter().any(|(t, s)| *t == id && !s.is_empty()) {
            return;
        }
        let entries: Vec<&EventEntry> = interaction.entries.iter().map(|e| e.unchecked_ref()).collect();
        let target = match entries.iter().find_map(|e| e.target()) {
            Some(node) => Some(i.options.target(&node)),
            None => entries
                .iter()
                .find_map(|e| e.target_selector().filter(|s| !s.is_empty())),
        };
        if let Some(t) = target {
            i.targets.retain(|(k, _)| *k != id);
            i.targets.push((id, t));
        }
    }

    /// After a batch: the candidates' frames are kept by the cleanup.
    pub fn processed<E: JsCast>(&self, longest: &LongestInteractions<E>) {
        let mut i = self.0.borrow_mut();
        let mut wanted = Vec::new();
        let mut ids = Vec::new();
        for interaction in longest.iter() {
            ids.push(interaction.id);
            if let Some(first) = interaction.entries.first() {
                if let Some(f) = i.entry_frames.get(first.unchecked_ref()).as_f64() {
                    wanted.push(f as u64);
                }
            }
        }
        i.wanted = wanted;
        i.targets.retain(|(t, _)| ids.contains(t));
    }

    /// `navigation_start`: the route's start (0 for the hard navigation),
    /// the load state of a report without entries.
    pub fn attribute(&self, value: f64, entries: &Array, navigation_start: f64) -> Attribution {
        // Frames the browser has not delivered yet: the buffered ones of an
        // agent that started late, when the page is hidden at once.
        let pending = self.0.borrow().loafs.as_ref().map(|po| entries_of(&po.take_records()));
        if let Some(pending) = pending {
            self.add_loafs(pending);
        }
        let mut i = self.0.borrow_mut();
        let frame_id = (entries.length() > 0)
            .then(|| i.entry_frames.get(entries.get(0).unchecked_ref()).as_f64())
            .flatten()
            .map(|f| f as u64);
        let Some(frame_id) = frame_id.filter(|id| i.frames.frame(*id).is_some()) else {
            return Attribution::Inp(InpAttribution {
                interaction_target: None,
                interaction_type: None,
                interaction_time: None,
                next_paint_time: None,
                processed_event_entries: Vec::new(),
                long_animation_frame_entries: Vec::new(),
                input_delay: 0.0,
                processing_duration: 0.0,
                presentation_delay: value,
                load_state: load_state(navigation_start),
                longest_script: None,
                total_script_duration: None,
                total_style_and_layout_duration: None,
                total_paint_duration: None,
                total_unattributed_duration: None,
            });
        };
        i.reported = Some(frame_id);
        let first: EventEntry = entries.get(0).unchecked_into();
        let frame = i.frames.frame_mut(frame_id).expect("checked above");
        // In place, as the reference sorts the frame's list.
        crate::sort::sort_by_key_f64(&mut frame.entries, |e| {
            e.unchecked_ref::<EventEntry>().processing_start()
        });
        let processed = frame.entries.clone();
        let parts = inp_parts(times(&first), frame);
        let loafs = i.frames.intersecting_loafs(first.start_time(), parts.processing_end);
        let summary = loaf_summary(&parts, &loafs.iter().map(loaf_times).collect::<Vec<_>>());
        let id = first.interaction_id().unwrap_or(0.0) as u64;
        let target = i.targets.iter().find(|(t, _)| *t == id).map(|(_, s)| s.clone());
        let longest_script = summary.and_then(|s| s.longest_script).map(|l| LongestScript {
            entry: loafs[l.loaf].scripts().get(l.script as u32).unchecked_into(),
            subpart: l.subpart,
            intersecting_duration: l.intersecting_duration,
        });
        Attribution::Inp(InpAttribution {
            interaction_target: Some(target),
            interaction_type: Some(interaction_type(&first.name())),
            interaction_time: Some(parts.interaction_time),
            next_paint_time: Some(parts.next_paint_time),
            processed_event_entries: processed,
            long_animation_frame_entries: loafs.into_iter().map(Into::into).collect(),
            input_delay: parts.input_delay,
            processing_duration: parts.processing_duration,
            presentation_delay: parts.presentation_delay,
            load_state: load_state(parts.interaction_time),
            longest_script,
            total_script_duration: summary.map(|s| s.total_script_duration),
            total_style_and_layout_duration: summary.map(|s| s.total_style_and_layout_duration),
            total_paint_duration: summary.map(|s| s.total_paint_duration),
            total_unattributed_duration: summary.map(|s| s.total_unattributed_duration),
        })
    }
}
