"""``manage.py create_token OWNER --scopes submit,report [--organisation SLUG] [--expires-in-days N]``:
an integration token from the command line (the admin's *Integration tokens* page does the same),
created as the first superuser, printed once."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from governance.errors import WardenError
from submissions.models import Organisation, TokenScope
from submissions.tokens import token_create


class Command(BaseCommand):
    help = "Create an integration token and print its key (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("owner", help="The user requests with the token act as.")
        parser.add_argument("--scopes", required=True, help=f"Comma-separated: {', '.join(TokenScope.values)}.")
        parser.add_argument("--name", default="", help="What uses it (default: the owner and the scopes).")
        parser.add_argument("--organisation", help="Bind the token to this organisation (its slug).")
        parser.add_argument("--expires-in-days", type=int, help="Refused from then on (default: never).")
        parser.add_argument("--rate-per-minute", type=int, default=120)

    def handle(self, *args, **options):
        users = get_user_model().objects
        owner = users.filter(username=options["owner"]).first()
        actor = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if owner is None:
            raise CommandError(f"No user {options['owner']!r}.")
        if actor is None:
            raise CommandError("Create a superuser first (manage.py createsuperuser): tokens are created in its name.")
        organisation = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation {options['organisation']!r}.")
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        days = options["expires_in_days"]
        try:
            token, key = token_create(
                actor=actor,
                name=options["name"] or f"{owner.get_username()}: {', '.join(scopes)}",
                owner=owner,
                organisation=organisation,
                scopes=scopes,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                rate_per_minute=options["rate_per_minute"],
            )
        except WardenError as exc:
            problems = "; ".join(error["message"] for error in exc.errors) or exc.detail
            raise CommandError(f"{exc.detail} {problems}") from None
        self.stderr.write(f"Token {token} for {owner.get_username()}, scopes {', '.join(token.scopes)}:")
        self.stdout.write(key)
