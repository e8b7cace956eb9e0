//! The Elm architecture core: `App` (all state), `Msg` (everything that can happen)
//! and `update`, which applies one message and may ask the runtime for an `Effect`.
//! No I/O here: signals and refresh changes are effects that `run` carries out.
use agent::model::Interval;

use crate::state::feed::{FeedControl, FeedEvent, FeedState, Seek};
use crate::state::procs::Processes;
use crate::state::rows::{DisplayRow, RowKind, SortKey, ViewOptions, visible_rows};
use crate::state::system::SystemState;

mod steps;
use steps::{ask_kill, edit_input, feed_event, navigate, refresh_step, sort_by, toggle};

/// Refresh intervals `+` and `-` step through, seconds.
pub const REFRESH_STEPS_S: [f64; 7] = [0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0];
/// Intervals kept while paused, so totals stay right when display resumes.
const PAUSED_BACKLOG: usize = 3600;
/// Ticks a message stays in the banner.
const MESSAGE_TICKS: u64 = 5;

/// Which text the keyboard is typing into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputMode {
    Filter,
    JobFilter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

/// The `k` confirmation dialog.
#[derive(Clone, Debug, PartialEq)]
pub struct KillDialog {
    pub pid: u32,
    pub command: String,
    pub signal: Signal,
}

/// Everything that can happen to the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Interval(Box<Interval>),
    CollectorError(String),
    /// News from the feed: connected, lost, a replay's jump or end.
    Feed(FeedEvent),
    /// A replay jump (←/→, Home/End while replaying).
    Seek(Seek),
    Resize {
        width: u16,
        height: u16,
    },
    /// Moves the selection by this many rows (arrows, mouse wheel).
    Move(isize),
    PageUp,
    PageDown,
    Home,
    End,
    SortStep(isize),
    SortBy(SortKey),
    StartInput(InputMode),
    InputChar(char),
    InputBackspace,
    InputAccept,
    InputCancel,
    ToggleTree,
    ToggleThreads,
    CycleGrouping,
    OpenDetails,
    /// Closes the topmost dialog, overlay or pane.
    Escape,
    ToggleHelp,
    TogglePause,
    /// `+` (1) or `-` (-1).
    RefreshStep(isize),
    AskKill,
    KillToggleSignal,
    KillConfirm,
    SignalResult(Result<String, String>),
    Quit,
}

/// What `update` asks the runtime to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    SetRefresh(f64),
    /// A request for a feed other than the in-process pipeline (a replay's).
    Feed(FeedControl),
    Signal {
        pid: u32,
        signal: Signal,
    },
}

#[derive(Clone, Debug)]
pub struct App {
    pub procs: Processes,
    pub system: SystemState,
    pub view: ViewOptions,
    /// The table's rows for `view`, recomputed after every change.
    pub rows: Vec<DisplayRow>,
    pub selected: usize,
    /// The row the user chose; the selection follows it across re-sorts.
    pub followed: Option<RowKind>,
    /// Intervals applied so far.
    pub tick: u64,
    pub refresh_s: f64,
    pub paused: bool,
    pub backlog: Vec<Interval>,
    pub input: Option<InputMode>,
    pub details: bool,
    pub help: bool,
    pub kill: Option<KillDialog>,
    /// A message for the banner and the tick it was set at.
    pub message: Option<(String, u64)>,
    pub width: u16,
    pub height: u16,
    pub quit: bool,
    /// greentop's own pid, to show its overhead.
    pub own_pid: u32,
    /// False when NO_COLOR is set: modifiers only.
    pub color: bool,
    /// Where the Intervals come from, and whether it is connected.
    pub feed: FeedState,
}

impl App {
    pub fn new(refresh_s: f64, own_pid: u32, color: bool) -> App {
        App {
            procs: Processes::default(),
            system: SystemState::default(),
            view: ViewOptions::default(),
            rows: Vec::new(),
            selected: 0,
            followed: None,
            tick: 0,
            refresh_s: refresh_s.clamp(
                REFRESH_STEPS_S[0],
                REFRESH_STEPS_S[REFRESH_STEPS_S.len() - 1],
            ),
            paused: false,
            backlog: Vec::new(),
            input: None,
            details: false,
            help: false,
            kill: None,
            message: None,
            width: 80,
            height: 24,
            quit: false,
            own_pid,
            color,
            feed: FeedState::default(),
        }
    }

    pub fn selected_row(&self) -> Option<&DisplayRow> {
        self.rows.get(self.selected)
    }

    /// The message to show, if it is still fresh.
    pub fn message(&self) -> Option<&str> {
        self.message
            .as_ref()
            .filter(|(_, at)| self.tick < at + MESSAGE_TICKS)
            .map(|(text, _)| text.as_str())
    }

    fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), self.tick));
    }

    /// Rows a page key moves by: the screen less the header, roughly.
    fn page_rows(&self) -> isize {
        (i32::from(self.height) - 10).max(1) as isize
    }

    fn apply_interval(&mut self, interval: &Interval) {
        self.tick += 1;
        self.procs.apply(interval, self.tick);
        self.system.apply(interval, self.own_pid);
    }

    /// Recomputes the rows and puts the selection back on the followed row.
    fn refresh_rows(&mut self) {
        self.rows = visible_rows(&self.procs, &self.view);
        if let Some(index) = self
            .followed
            .as_ref()
            .and_then(|kind| self.rows.iter().position(|r| &r.kind == kind))
        {
            self.selected = index;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    fn move_to(&mut self, index: isize) {
        let last = self.rows.len().saturating_sub(1) as isize;
        self.selected = index.clamp(0, last.max(0)) as usize;
        self.followed = self.rows.get(self.selected).map(|r| r.kind.clone());
    }
}

/// Applies `msg`; returns what the runtime must do, if anything.
pub fn update(app: &mut App, msg: Msg) -> Option<Effect> {
    let effect = match msg {
        Msg::Interval(interval) => {
            // A paused replay sends only what a seek asked for: show it.
            if app.paused && !app.feed.is_replay() {
                if app.backlog.len() == PAUSED_BACKLOG {
                    app.backlog.remove(0);
                }
                app.backlog.push(*interval);
                return None;
            }
            app.apply_interval(&interval);
            None
        }
        Msg::CollectorError(text) => {
            app.say(text);
            None
        }
        Msg::Feed(event) => feed_event(app, event),
        Msg::Seek(seek) => app
            .feed
            .is_replay()
            .then_some(Effect::Feed(FeedControl::Seek(seek))),
        Msg::Resize { width, height } => {
            (app.width, app.height) = (width, height);
            None
        }
        Msg::Move(by) => navigate(app, app.selected as isize + by),
        Msg::PageUp => navigate(app, app.selected as isize - app.page_rows()),
        Msg::PageDown => navigate(app, app.selected as isize + app.page_rows()),
        Msg::Home => navigate(app, 0),
        Msg::End => navigate(app, isize::MAX / 2),
        Msg::SortStep(step) => sort_by(app, app.view.sort.step(step), false),
        Msg::SortBy(key) => sort_by(app, key, true),
        Msg::StartInput(mode) => {
            app.input = Some(mode);
            None
        }
        Msg::InputChar(c) => edit_input(app, |text| text.push(c)),
        Msg::InputBackspace => edit_input(app, |text| {
            text.pop();
        }),
        Msg::InputAccept => {
            app.input = None;
            None
        }
        Msg::InputCancel => {
            edit_input(app, String::clear);
            app.input = None;
            None
        }
        Msg::ToggleTree => toggle(app, |v| v.tree = !v.tree),
        Msg::ToggleThreads => toggle(app, |v| v.threads = !v.threads),
        Msg::CycleGrouping => toggle(app, |v| v.grouping = v.grouping.next()),
        Msg::OpenDetails => {
            app.details = app.selected_row().is_some();
            None
        }
        Msg::Escape => {
            if app.kill.is_some() {
                app.kill = None;
            } else if app.help {
                app.help = false;
            } else if app.details {
                app.details = false;
            }
            None
        }
        Msg::ToggleHelp => {
            app.help = !app.help;
            None
        }
        Msg::TogglePause => {
            app.paused = !app.paused;
            for interval in std::mem::take(&mut app.backlog) {
                app.apply_interval(&interval);
            }
            // A replay stops reading instead of piling up a backlog.
            app.feed
                .is_replay()
                .then_some(Effect::Feed(FeedControl::Pause(app.paused)))
        }
        Msg::RefreshStep(step) => refresh_step(app, step),
        Msg::AskKill => ask_kill(app),
        Msg::KillToggleSignal => {
            if let Some(dialog) = app.kill.as_mut() {
                dialog.signal = match dialog.signal {
                    Signal::Term => Signal::Kill,
                    Signal::Kill => Signal::Term,
                };
            }
            None
        }
        Msg::KillConfirm => match app.kill.take() {
            Some(dialog) if dialog.pid > 1 => Some(Effect::Signal {
                pid: dialog.pid,
                signal: dialog.signal,
            }),
            _ => None,
        },
        Msg::SignalResult(result) => {
            app.say(result.unwrap_or_else(|err| err));
            None
        }
        Msg::Quit => {
            app.quit = true;
            None
        }
    };
    app.refresh_rows();
    effect
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
