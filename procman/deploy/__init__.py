"""procman deploy: releases over SSH (config, release artifacts, remote steps, history)."""
