"""Create the demo clinics and accounts. Idempotent; refused under production settings."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Clinic, User

DEMO_CLINIC = "Demo Clinic"
SECOND_CLINIC = "Second Clinic"
# (latitude, longitude): Nairobi and Maputo, for the dashboard's UV index.
CLINIC_LOCATIONS = {DEMO_CLINIC: (-1.2921, 36.8219), SECOND_CLINIC: (-25.9692, 32.5732)}
# username -> (role, superuser, clinic names)
DEMO_USERS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "demo-staff": (User.Role.CLINIC_STAFF, False, (DEMO_CLINIC,)),
    "demo-staff-2": (User.Role.CLINIC_STAFF, False, (SECOND_CLINIC,)),
    # Specialists serve the clinics listed: they see those clinics' referrals only.
    "demo-specialist": (User.Role.SPECIALIST, False, (DEMO_CLINIC, SECOND_CLINIC)),
    "demo-specialist-2": (User.Role.SPECIALIST, False, (SECOND_CLINIC,)),
    "demo-admin": (User.Role.ADMINISTRATOR, True, ()),
}
# Demo users get an address at example.org (reserved for examples, RFC 2606), so the portal's
# emails are written; with the default EMAIL_URL (consolemail://) they appear in the output of
# the worker that sends them (bin/portal's terminal), and nothing leaves the machine.
DEMO_EMAIL_DOMAIN = "example.org"


class Command(BaseCommand):
    help = (
        "Create the clinics 'Demo Clinic' and 'Second Clinic' and the users demo-staff, "
        "demo-staff-2, demo-specialist (serving both clinics), demo-specialist-2 (serving Second Clinic) "
        "and demo-admin, each with an address at example.org. Running it again changes nothing "
        "unless --password is given, which resets the demo users' password."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            help="Password for every demo user. Without it, new users get a generated one, printed once.",
        )

    def handle(self, *args, password: str | None = None, **options) -> None:
        if getattr(settings, "SKINPORTAL_REFUSE_DEMO_USERS", False):
            raise CommandError("seed_demo is refused under production settings.")
        generated = password is None
        password = password or secrets.token_urlsafe(16)
        created_users = self._seed(password=password, reset_password=not generated)

        if generated and created_users:
            self.stdout.write(
                f"Created {', '.join(created_users)} with the generated password:\n"
                f"  {password}\n(shown once; run again with --password to set another)"
            )
        elif generated:
            self.stdout.write("Demo users already exist; passwords unchanged.")
        else:
            self.stdout.write(f"Demo users ready: {', '.join(DEMO_USERS)}.")

    @transaction.atomic
    def _seed(self, *, password: str, reset_password: bool) -> list[str]:
        clinics = {name: Clinic.objects.get_or_create(name=name)[0] for name in (DEMO_CLINIC, SECOND_CLINIC)}
        for name, (latitude, longitude) in CLINIC_LOCATIONS.items():
            Clinic.objects.filter(name=name, latitude=None, longitude=None).update(
                latitude=latitude, longitude=longitude
            )
        created_users = []
        for username, (role, superuser, clinic_names) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "role": role,
                    "is_superuser": superuser,
                    "is_staff": superuser,
                },
            )
            user.role = role
            user.is_superuser = user.is_staff = superuser
            user.is_active = True
            if not user.email:  # an address set in admin is kept
                user.email = f"{username}@{DEMO_EMAIL_DOMAIN}"
            if created or reset_password:
                user.set_password(password)
            user.save()
            user.clinics.set([clinics[name] for name in clinic_names])
            if created:
                created_users.append(username)
        return created_users
