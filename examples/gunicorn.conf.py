# Read by gunicorn from the directory it starts in (the Procfile's web line runs it here).
# Recent gunicorns (27, for one) open a control socket in ~/.gunicorn/ by default, shared by
# every app of the user, and log a line about it; procman is what controls these processes.
# Gunicorns without that socket ignore this setting.
control_socket_disable = True
