//! INP attribution: event entries grouped by the frame that presented
//! them, the long animation frames (LoAF) that intersect an interaction,
//! its subparts, and the LoAF totals and longest script.

use alloc::vec::Vec;

use beacon::InteractionType;

/// Data about this many recent frames is kept (entries and LoAFs can
/// arrive out of order).
pub const MAX_PENDING_FRAMES: usize = 10;

/// Entries whose paint times are this close share a frame.
pub const SAME_FRAME_MS: f64 = 8.0;

/// An `event` entry's times.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EventTimes {
    pub start_time: f64,
    pub duration: f64,
    pub processing_start: f64,
    pub processing_end: f64,
}

/// The event entries presented in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<E> {
    pub id: u64,
    pub start_time: f64,
    pub processing_start: f64,
    pub processing_end: f64,
    pub render_time: f64,
    /// Only with `includeProcessedEventEntries`.
    pub entries: Vec<E>,
}

/// A LoAF's times, and its scripts'.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoafTimes {
    pub start_time: f64,
    pub duration: f64,
    pub style_and_layout_start: f64,
    pub scripts: Vec<ScriptTimes>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScriptTimes {
    pub start_time: f64,
    pub duration: f64,
    pub forced_style_and_layout_duration: f64,
}

/// The pending frames and LoAFs of one `onINP` instance (`L` is the
/// browser's LoAF entry, `E` its event entry).
#[derive(Debug)]
pub struct Frames<E, L> {
    frames: Vec<Frame<E>>,
    next_id: u64,
    latest_processing_end: f64,
    loafs: Vec<(f64, f64, L)>,
    /// Frames dropped from the pending list but still named by an
    /// interaction (the reference's WeakMap keeps them).
    kept: Vec<Frame<E>>,
}

impl<E, L> Default for Frames<E, L> {
    fn default() -> Self {
        Frames {
            frames: Vec::new(),
            next_id: 1,
            latest_processing_end: 0.0,
            loafs: Vec::new(),
            kept: Vec::new(),
        }
    }
}

impl<E, L: Clone> Frames<E, L> {
    /// Adds an event entry (`entry`: kept in the frame's processed
    /// entries when given); returns the id of its frame.
    pub fn add_event(&mut self, t: EventTimes, entry: Option<E>) -> u64 {
        let render_time = t.start_time + t.duration;
        self.latest_processing_end = self.latest_processing_end.max(t.processing_end);
        if let Some(f) = self
            .frames
            .iter_mut()
            .rev()
            .find(|f| (render_time - f.render_time).abs() <= SAME_FRAME_MS)
        {
            f.start_time = f.start_time.min(t.start_time);
            f.processing_start = f.processing_start.min(t.processing_start);
            f.processing_end = f.processing_end.max(t.processing_end);
            f.entries.extend(entry);
            return f.id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.frames.push(Frame {
            id,
            start_time: t.start_time,
            processing_start: t.processing_start,
            processing_end: t.processing_end,
            render_time,
            entries: entry.into_iter().collect(),
        });
        id
    }

    /// Adds LoAF entries (`(startTime, duration, entry)`, in time order).
    pub fn add_loafs(&mut self, loafs: impl IntoIterator<Item = (f64, f64, L)>) {
        self.loafs.extend(loafs);
    }

    pub fn frame(&self, id: u64) -> Option<&Frame<E>> {
        self.frames.iter().chain(&self.kept).find(|f| f.id == id)
    }

    pub fn frame_mut(&mut self, id: u64) -> Option<&mut Frame<E>> {
        self.frames.iter_mut().chain(self.kept.iter_mut()).find(|f| f.id == id)
    }

    /// The LoAFs that overlap `start..=end`.
    pub fn intersecting_loafs(&self, start: f64, end: f64) -> Vec<L> {
        let mut out = Vec::new();
        for (s, d, l) in &self.loafs {
            if s + d < start {
                continue;
            }
            if *s > end {
                break;
            }
            out.push(l.clone());
        }
        out
    }

    /// The reference's cleanup (in an idle task): keeps the frames of the
    /// longest interactions (`wanted`) and the last 10, and the LoAFs that
    /// intersect those or are recent and after the latest processed
    /// event. `named`: frames an interaction or the metric still refers
    /// to, kept aside for attribution.
    pub fn cleanup(&mut self, wanted: &[u64], named: &[u64]) {
        let min_index = self.frames.len().saturating_sub(MAX_PENDING_FRAMES);
        let mut i = 0;
        let mut dropped = Vec::new();
        self.frames.retain_mut(|f| {
            let keep = i >= min_index || wanted.contains(&f.id);
            i += 1;
            if !keep {
                dropped.push(Frame {
                    entries: core::mem::take(&mut f.entries),
                    ..*f
                });
            }
            keep
        });
        self.kept.retain(|f| named.contains(&f.id));
        self.kept.extend(dropped.into_iter().filter(|f| named.contains(&f.id)));
        let mut intersecting = Vec::new();
        for f in &self.frames {
            for (j, (s, d, _)) in self.loafs.iter().enumerate() {
                if s + d < f.start_time {
                    continue;
                }
                if *s > f.processing_end {
                    break;
                }
                intersecting.push(j);
            }
        }
        let min_loaf = self.loafs.len().saturating_sub(MAX_PENDING_FRAMES);
        let latest = self.latest_processing_end;
        let mut j = 0;
        self.loafs.retain(|(s, _, _)| {
            let keep = intersecting.contains(&j) || (j >= min_loaf && *s > latest);
            j += 1;
            keep
        });
    }

    #[cfg(test)]
    fn pending(&self) -> (usize, usize) {
        (self.frames.len(), self.loafs.len())
    }
}

/// An interaction's subparts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InpParts {
    pub interaction_time: f64,
    pub next_paint_time: f64,
    pub input_delay: f64,
    pub processing_duration: f64,
    pub presentation_delay: f64,
    /// Where processing ends, clamped to the paint (the LoAF search ends
    /// there).
    pub processing_end: f64,
}

/// The subparts of the interaction whose first entry is `first`, in
/// `frame`: input delay never negative (the frame's processing may start
/// before this interaction), the paint never before processing, and
/// processing never after the paint (`alert()`).
pub fn inp_parts<E>(first: EventTimes, frame: &Frame<E>) -> InpParts {
    let processing_start = frame.processing_start.max(first.start_time);
    let next_paint_time = (first.start_time + first.duration).max(processing_start);
    let processing_end = frame.processing_end.min(next_paint_time);
    InpParts {
        interaction_time: first.start_time,
        next_paint_time,
        input_delay: processing_start - first.start_time,
        processing_duration: processing_end - processing_start,
        presentation_delay: next_paint_time - processing_end,
        processing_end,
    }
}

/// `keyboard` for `key*` events, else `pointer`.
pub fn interaction_type(event_name: &str) -> InteractionType {
    if event_name.starts_with("key") {
        InteractionType::Keyboard
    } else {
        InteractionType::Pointer
    }
}

/// Which subpart a script ran in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subpart {
    /// Before the first handler ran.
    InputDelay,
    /// In the handlers.
    ProcessingDuration,
    /// After them, until the paint.
    PresentationDelay,
}

impl Subpart {
    /// `input-delay`, `processing-duration` or `presentation-delay`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subpart::InputDelay => "input-delay",
            Subpart::ProcessingDuration => "processing-duration",
            Subpart::PresentationDelay => "presentation-delay",
        }
    }
}

/// The script that ran longest within the interaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongestScript {
    /// Index of its LoAF, and of the script in it.
    pub loaf: usize,
    pub script: usize,
    pub subpart: Subpart,
    pub intersecting_duration: f64,
}

/// What the LoAFs say about an interaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoafSummary {
    pub longest_script: Option<LongestScript>,
    pub total_script_duration: f64,
    pub total_style_and_layout_duration: f64,
    pub total_paint_duration: f64,
    pub total_unattributed_duration: f64,
}

/// The reference's `attributeLoAFDetails`: `None` without LoAFs or with
/// an interaction or paint time of 0. Script time within the interaction
/// (forced style and layout apportioned by the overlap and counted as
/// style and layout), the LoAFs' style and layout, the paint after the
/// last LoAF, and what none of them explains.
pub fn loaf_summary(p: &InpParts, loafs: &[LoafTimes]) -> Option<LoafSummary> {
    let (start, paint) = (p.interaction_time, p.next_paint_time);
    if loafs.is_empty() || start == 0.0 || paint == 0.0 {
        return None;
    }
    let mut script_total = 0.0;
    let mut style_layout_total = 0.0;
    let mut longest: Option<LongestScript> = None;
    let mut longest_duration = 0.0;
    for (li, loaf) in loafs.iter().enumerate() {
        style_layout_total = style_layout_total + loaf.start_time + loaf.duration - loaf.style_and_layout_start;
        for (si, s) in loaf.scripts.iter().enumerate() {
            let end = s.start_time + s.duration;
            if end < start {
                continue;
            }
            let intersecting = end - start.max(s.start_time);
            let forced = if s.duration != 0.0 {
                intersecting / s.duration * s.forced_style_and_layout_duration
            } else {
                0.0
            };
            script_total += intersecting - forced;
            style_layout_total += forced;
            if intersecting > longest_duration {
                let subpart = if s.start_time < start + p.input_delay {
                    Subpart::InputDelay
                } else if s.start_time >= start + p.input_delay + p.processing_duration {
                    Subpart::PresentationDelay
                } else {
                    Subpart::ProcessingDuration
                };
                longest = Some(LongestScript {
                    loaf: li,
                    script: si,
                    subpart,
                    intersecting_duration: intersecting,
                });
                longest_duration = intersecting;
            }
        }
    }
    let last_end = loafs.last().map_or(0.0, |l| l.start_time + l.duration);
    let paint_total = if last_end >= start + p.input_delay + p.processing_duration {
        paint - last_end
    } else {
        0.0
    };
    Some(LoafSummary {
        longest_script: longest,
        total_script_duration: script_total,
        total_style_and_layout_duration: style_layout_total,
        total_paint_duration: paint_total,
        total_unattributed_duration: paint - start - script_total - style_layout_total - paint_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(start_time: f64, duration: f64, processing_start: f64, processing_end: f64) -> EventTimes {
        EventTimes {
            start_time,
            duration,
            processing_start,
            processing_end,
        }
    }

    #[test]
    fn entries_within_8ms_of_paint_share_a_frame() {
        let mut f: Frames<u32, u32> = Frames::default();
        let a = f.add_event(ev(100.0, 200.0, 110.0, 250.0), Some(1));
        let b = f.add_event(ev(104.0, 200.0, 260.0, 270.0), Some(2));
        let c = f.add_event(ev(400.0, 50.0, 401.0, 420.0), None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let fr = f.frame(a).unwrap();
        assert_eq!(
            (fr.start_time, fr.processing_start, fr.processing_end),
            (100.0, 110.0, 270.0)
        );
        assert_eq!(fr.entries, [1, 2]);
        assert!(f.frame(c).unwrap().entries.is_empty());
    }

    #[test]
    fn subparts_clamped() {
        let mut f: Frames<(), ()> = Frames::default();
        // A pointerover handler still running when the click came.
        let id = f.add_event(ev(50.0, 248.0, 60.0, 200.0), None);
        f.add_event(ev(100.0, 200.0, 210.0, 280.0), None);
        let p = inp_parts(ev(100.0, 200.0, 210.0, 280.0), f.frame(id).unwrap());
        assert_eq!(
            p,
            InpParts {
                interaction_time: 100.0,
                next_paint_time: 300.0,
                input_delay: 0.0,
                processing_duration: 180.0,
                presentation_delay: 20.0,
                processing_end: 280.0
            }
        );
        // alert(): processing past the paint is capped.
        let mut f: Frames<(), ()> = Frames::default();
        let id = f.add_event(ev(10.0, 100.0, 20.0, 5000.0), None);
        let p = inp_parts(ev(10.0, 100.0, 20.0, 5000.0), f.frame(id).unwrap());
        assert_eq!(
            (p.input_delay, p.processing_duration, p.presentation_delay),
            (10.0, 90.0, 0.0)
        );
        // Durations rounded to 8 ms: the paint is never before processing.
        let mut f: Frames<(), ()> = Frames::default();
        let id = f.add_event(ev(10.0, 16.0, 30.0, 31.0), None);
        let p = inp_parts(ev(10.0, 16.0, 30.0, 31.0), f.frame(id).unwrap());
        assert_eq!(
            (p.next_paint_time, p.processing_duration, p.presentation_delay),
            (30.0, 0.0, 0.0)
        );
        assert_eq!(interaction_type("keydown"), InteractionType::Keyboard);
        assert_eq!(interaction_type("pointerup"), InteractionType::Pointer);
        assert_eq!(interaction_type("click"), InteractionType::Pointer);
    }

    #[test]
    fn loafs_intersecting() {
        let mut f: Frames<(), u32> = Frames::default();
        f.add_loafs([(0.0, 50.0, 1), (60.0, 100.0, 2), (170.0, 60.0, 3), (300.0, 60.0, 4)]);
        assert_eq!(f.intersecting_loafs(100.0, 200.0), [2, 3]);
        assert_eq!(f.intersecting_loafs(50.0, 60.0), [1, 2], "touching counts");
        assert_eq!(f.intersecting_loafs(400.0, 500.0), Vec::<u32>::new());
    }

    #[test]
    fn cleanup_keeps_recent_and_wanted_frames_and_their_loafs() {
        let mut f: Frames<(), u32> = Frames::default();
        let first = f.add_event(ev(0.0, 40.0, 1.0, 30.0), None);
        let second = f.add_event(ev(100.0, 40.0, 101.0, 130.0), None);
        for i in 0..12 {
            let t = 1000.0 + 100.0 * i as f64;
            f.add_event(ev(t, 40.0, t + 1.0, t + 30.0), None);
        }
        f.add_loafs([(0.0, 60.0, 0), (100.0, 60.0, 1), (500.0, 60.0, 2), (5000.0, 60.0, 3)]);
        f.cleanup(&[first], &[second]);
        assert_eq!(
            f.pending(),
            (11, 2),
            "the last 10 frames and the wanted one; its LoAF and the recent one"
        );
        assert!(f.frame(first).is_some());
        assert!(f.frame(second).is_some(), "named: kept aside");
        assert_eq!(f.intersecting_loafs(0.0, 10_000.0), [0, 3]);
        f.cleanup(&[], &[]);
        assert!(f.frame(second).is_none());
        assert!(f.frame(first).is_none());
        assert_eq!(f.pending(), (10, 1));
    }

    fn loaf(start_time: f64, duration: f64, style_and_layout_start: f64, scripts: &[(f64, f64, f64)]) -> LoafTimes {
        LoafTimes {
            start_time,
            duration,
            style_and_layout_start,
            scripts: scripts
                .iter()
                .map(
                    |&(start_time, duration, forced_style_and_layout_duration)| ScriptTimes {
                        start_time,
                        duration,
                        forced_style_and_layout_duration,
                    },
                )
                .collect(),
        }
    }

    #[test]
    fn loaf_totals_and_longest_script() {
        let p = InpParts {
            interaction_time: 1000.0,
            next_paint_time: 1400.0,
            input_delay: 50.0,
            processing_duration: 250.0,
            presentation_delay: 100.0,
            processing_end: 1300.0,
        };
        let loafs = [
            // A script ending before the interaction does not count.
            loaf(900.0, 200.0, 1090.0, &[(900.0, 50.0, 0.0), (1020.0, 60.0, 0.0)]),
            loaf(1100.0, 250.0, 1330.0, &[(1100.0, 200.0, 20.0), (1310.0, 10.0, 0.0)]),
        ];
        let s = loaf_summary(&p, &loafs).unwrap();
        let longest = s.longest_script.unwrap();
        assert_eq!((longest.loaf, longest.script), (1, 0));
        assert_eq!(longest.subpart, Subpart::ProcessingDuration);
        assert_eq!(longest.intersecting_duration, 200.0);
        // Scripts: 60 + (200 - 20) + 10; style and layout: 10 + 20 + 20.
        assert_eq!(s.total_script_duration, 250.0);
        assert_eq!(s.total_style_and_layout_duration, 50.0);
        assert_eq!(s.total_paint_duration, 50.0);
        assert_eq!(s.total_unattributed_duration, 400.0 - 250.0 - 50.0 - 50.0);
        // The first script partly before the interaction: only the overlap.
        let early = [loaf(950.0, 100.0, 1040.0, &[(980.0, 40.0, 8.0)])];
        let s = loaf_summary(&p, &early).unwrap();
        let l = s.longest_script.unwrap();
        assert_eq!((l.intersecting_duration, l.subpart), (20.0, Subpart::InputDelay));
        assert_eq!(s.total_script_duration, 20.0 - 4.0);
        assert_eq!(
            s.total_paint_duration, 0.0,
            "the last LoAF ended before the presentation"
        );
        let late = [loaf(1310.0, 60.0, 1360.0, &[(1310.0, 30.0, 0.0)])];
        let l = loaf_summary(&p, &late).unwrap().longest_script.unwrap();
        assert_eq!(l.subpart, Subpart::PresentationDelay);
        assert_eq!(Subpart::PresentationDelay.as_str(), "presentation-delay");
        assert_eq!(loaf_summary(&p, &[]), None);
        assert_eq!(
            loaf_summary(
                &InpParts {
                    interaction_time: 0.0,
                    ..p
                },
                &late
            ),
            None
        );
        let none = loaf_summary(&p, &[loaf(1000.0, 100.0, 1090.0, &[])]).unwrap();
        assert_eq!(none.longest_script, None);
    }
}
