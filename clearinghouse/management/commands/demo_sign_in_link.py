from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from consent import services


class Command(BaseCommand):
    help = "Development only: print a dashboard sign-in link for a customer's e-mail address."

    def add_arguments(self, parser):
        parser.add_argument("email")

    def handle(self, *args, email, **options):
        if not settings.DEBUG:
            raise CommandError(
                "Only in development (DEBUG): in production links go by e-mail alone."
            )
        link = services.magic_link_request(email=email, ip="127.0.0.1")
        if link is None:
            raise CommandError(f"No customer with the address {email}: run `manage.py load_demo`.")
        self.stdout.write(f"{settings.SITE_URL}/me/link/{services.magic_link_token(link)}/")
