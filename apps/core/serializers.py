from django.core.validators import RegexValidator
from rest_framework import serializers

# JSON types a request field of each kind takes. DRF itself is lenient: a
# CharField turns 0 into "0", a UUIDField turns 0 into the nil UUID, a
# BooleanField takes "yes" and 1, an IntegerField takes "7". The contract says
# "string", "boolean", "integer": the strict serializer holds the body to that.
# (Order matters: subclasses before their bases.)
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "a boolean"),
    # JSON Schema's integer includes 7.0 (checked below); DRF takes it as 7.
    (serializers.IntegerField, (int, float), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
)


def _matches_as_sent(field, value: str) -> bool:
    """The value, untrimmed, matches the field's pattern as JSON Schema reads it
    (where $ is the very end). DRF matches the trimmed value, and Python's $ also
    matches before a final newline: " site" and "site\n" pass there, not here."""
    patterns = [validator.regex for validator in field.validators if isinstance(validator, RegexValidator)]
    return not value.endswith("\n") and all(pattern.search(value) for pattern in patterns)


def json_type_problem(field, value) -> str | None:
    """Why ``value`` is not of the JSON type the contract gives ``field`` (None: it is)."""
    if value is None:
        return None  # DRF's own "may not be null" answers this, where null is not allowed
    for kind, types, name in _JSON_TYPES:
        if not isinstance(field, kind):
            continue
        # bool is an int in Python; JSON keeps them apart.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"Must be {name}."
        if isinstance(field, serializers.IntegerField) and isinstance(value, float) and not value.is_integer():
            return f"Must be {name}."
        # (Only white space is left to DRF, whose answer is "may not be blank".)
        if isinstance(field, serializers.RegexField) and value.strip() and not _matches_as_sent(field, value):
            return str(field.error_messages["invalid"])
        if isinstance(field, serializers.ListField):
            for item in value:
                problem = json_type_problem(field.child, item)
                if problem:
                    return "Every item " + problem[0].lower() + problem[1:]
        return None
    return None


class StrictSerializer(serializers.Serializer):
    """A request body. Fields it does not declare, and values of another JSON
    type than the field's (a number for a string, a string for a boolean), are
    refused with 400."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        writable = {name: field for name, field in self.fields.items() if not field.read_only}
        problems = {name: ["Unknown field."] for name in sorted(set(data) - set(writable))}
        for name, value in data.items():
            field = writable.get(name)
            if field is None:
                continue
            problem = json_type_problem(field, value)
            if problem:
                problems[name] = [problem]
        if problems:
            raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable error code (docs/error-codes.md).")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(required=False, help_text="Extra structured context, when useful.")


class JobResponseSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()


class ResourceResetResponseSerializer(serializers.Serializer):
    from apps.core.choices import LifecycleStatus

    success = serializers.BooleanField()
    status = serializers.ChoiceField(choices=LifecycleStatus.choices)


class ControlPlaneHttpsSerializer(serializers.Serializer):
    hostname = serializers.CharField(allow_blank=True, help_text="The control plane domain in force (the setting, "
                                                                 "or PRESSLUFT_CONTROL_PLANE_DOMAIN); empty: none.")
    state = serializers.ChoiceField(
        choices=["off", "pending", "active", "failed", "not_managed"],
        help_text="off: no domain; pending: job panel_https queued or running; active: served over HTTPS on it; "
                  "failed: the last job failed (see error); not_managed: the panel's machine is no node of the "
                  "panel, so a proxy of your own serves the domain.")
    job_id = serializers.UUIDField(allow_null=True, help_text="The last panel_https job.")
    expires_at = serializers.CharField(allow_null=True, help_text="Expiry of the certificate (ISO 8601).")
    error = serializers.CharField(allow_blank=True)


def _panel_settings_serializers():
    """The answer and the PATCH body of /api/settings, both generated from
    apps.core.panel_settings.SETTINGS (a new setting needs no change here)."""
    from apps.core.panel_settings import SETTINGS

    shown, accepted = {}, {}
    for setting in SETTINGS:
        if setting.secret:
            shown[f"{setting.name}_set"] = serializers.BooleanField(
                help_text=f"Whether it is stored (write-only: the value is never shown). {setting.help}")
        else:
            shown[setting.name] = serializers.CharField(allow_blank=True, help_text=setting.help)
        accepted[setting.name] = serializers.CharField(
            required=False, allow_blank=True, max_length=setting.max_length, trim_whitespace=False,
            help_text=setting.help + (" Write-only." if setting.secret else "") + " An empty string clears it.")
    shown["backups_enabled"] = serializers.BooleanField(
        help_text="Backup storage is complete (stored here or given by PRESSLUFT_BACKUP_S3_* variables).")
    shown["control_plane_https"] = ControlPlaneHttpsSerializer(
        help_text="The panel served over HTTPS on its control plane domain (read-only).")
    shown["updated_at"] = serializers.DateTimeField()
    accepted["min_properties"] = 1
    return (type("PanelSettingsSerializer", (serializers.Serializer,), shown),
            type("PanelSettingsUpdateSerializer", (StrictSerializer,), accepted))


PanelSettingsSerializer, PanelSettingsUpdateSerializer = _panel_settings_serializers()
