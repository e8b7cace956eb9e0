//! greentop's interactive view as a library: the Elm-architecture app, its state and
//! views, the terminal and the event loop, so tests and benchmarks can drive them.
pub mod app;
pub mod feed;
pub mod fixtures;
pub mod format;
pub mod jobrun;
pub mod keys;
pub mod run;
pub mod state;
pub mod stop;
pub mod term;
pub mod view;
