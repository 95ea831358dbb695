from rest_framework import serializers

from apps.core.serializers import StrictSerializer


class LoginRequestSerializer(StrictSerializer):
    email = serializers.EmailField()
    password = serializers.CharField(min_length=1, trim_whitespace=False)


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()
