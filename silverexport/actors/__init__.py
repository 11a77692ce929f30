"""pykka actors: they decide what happens to jobs; the event log remembers it."""
