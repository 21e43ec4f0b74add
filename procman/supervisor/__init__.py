"""Running a formation: spawning children, multiplexing their output, stopping them all."""
