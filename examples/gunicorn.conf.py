# Read by gunicorn from the directory it starts in (the Procfile's web line runs it here).
# gunicorn 25 and newer open a control socket in ~/.gunicorn/ by default, shared by every app of
# the user, and log a line about it; procman is what controls these processes. Older gunicorns
# ignore this setting.
control_socket_disable = True
