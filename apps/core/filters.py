import django_filters


class ContractFilterSet(django_filters.FilterSet):
    """List filters held to the contract: a filter given must have a value of
    its kind. django-filter reads an empty choice or id (``?status=``) as "any";
    the contract's enum and uuid do not allow an empty string, so it is refused
    (400). Free-text filters (a string in the contract) may be empty."""

    def is_valid(self):
        valid = super().is_valid()
        for name, query_filter in self.filters.items():
            if self.data.get(name) == "" and not isinstance(query_filter, django_filters.CharFilter):
                self.form.add_error(name, "May not be empty; leave the parameter out for any value.")
                valid = False
        return valid
