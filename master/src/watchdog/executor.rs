//! Applies the watchdog's actions (to be written).
