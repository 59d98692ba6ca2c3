"""A stock Django application whose login is mozilla-django-oidc, configured by
tests/tests/oidc_op.rs against Varco as the OpenID Provider:

  python manage.py CONFIG.json <django command>...
"""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rp.settings")
    os.environ["VARCO_RP_CONFIG"] = sys.argv.pop(1)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
