import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.core import contract

CONTRACT_FILE = Path(settings.BASE_DIR) / "contracts" / "openapi.yaml"
REFERENCE_DIGEST_FILE = Path(settings.BASE_DIR) / "contracts" / "reference-digest.json"
DEFAULT_REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "seed-openapi.yaml"


class Command(BaseCommand):
    help = (
        "Write contracts/openapi.yaml from the code, and (given the reference contract) "
        "contracts/reference-digest.json, the structure the contract test checks against."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)

    def handle(self, *args, reference: Path, **options):
        call_command("spectacular", "--file", str(CONTRACT_FILE), "--validate", "--fail-on-warn")
        self.stdout.write(f"wrote {CONTRACT_FILE}")
        if reference.exists():
            digest = contract.digest(contract.load_document(reference), reference.parent)
            REFERENCE_DIGEST_FILE.write_text(json.dumps(digest, indent=1, sort_keys=True) + "\n")
            self.stdout.write(f"wrote {REFERENCE_DIGEST_FILE} from {reference}")
        else:
            self.stdout.write(f"reference {reference} not found; kept {REFERENCE_DIGEST_FILE}")
