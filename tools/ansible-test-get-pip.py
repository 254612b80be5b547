# Stand-in for the pip bootstrap script that ansible-test downloads from ci-files.testing.ansible.com
# when it creates its sanity virtualenvs (unreachable on air-gapped machines such as our CI).
# It installs the pip bundled with Python (ensurepip) into the new virtualenv, then asks that pip
# for the exact packages ansible-test wants (for example pip==24.2) from the configured index.
# ensurepip runs in its own process: it points PIP_CONFIG_FILE at /dev/null in the process that
# calls it, and the second step must see the machine's pip configuration (index, CA bundle).
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])  # noqa: S603 -- arguments come from ansible-test
