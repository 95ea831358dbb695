from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """A request body serializer that refuses fields it does not know
    (the contract's ``additionalProperties: false``)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
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
