"""The tap against the local Toggl stand-in (toggl_standin/, a real HTTP server): as a process,
as users run it, or in this process over HTTP where a test runs it by the hundred."""
