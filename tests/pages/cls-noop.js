// Intentionally empty: served with ?delay=MS to hold back the load event.
