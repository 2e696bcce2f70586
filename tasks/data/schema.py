"""The Telco customer-churn snapshot schema: one place for column names, types and domains."""

from __future__ import annotations

ID_COLUMN = "customerID"
TARGET = "Churn"
POSITIVE_LABEL = "Yes"
NEGATIVE_LABEL = "No"

YES_NO = ("No", "Yes")
_INTERNET_ADDON = ("No", "No internet service", "Yes")

#: Categorical columns and their allowed values, as in the public IBM Telco data.
CATEGORICAL_DOMAINS: dict[str, tuple[str, ...]] = {
    "gender": ("Female", "Male"),
    "Partner": YES_NO,
    "Dependents": YES_NO,
    "PhoneService": YES_NO,
    "MultipleLines": ("No", "No phone service", "Yes"),
    "InternetService": ("DSL", "Fiber optic", "No"),
    "OnlineSecurity": _INTERNET_ADDON,
    "OnlineBackup": _INTERNET_ADDON,
    "DeviceProtection": _INTERNET_ADDON,
    "TechSupport": _INTERNET_ADDON,
    "StreamingTV": _INTERNET_ADDON,
    "StreamingMovies": _INTERNET_ADDON,
    "Contract": ("Month-to-month", "One year", "Two year"),
    "PaperlessBilling": YES_NO,
    "PaymentMethod": (
        "Bank transfer (automatic)",
        "Credit card (automatic)",
        "Electronic check",
        "Mailed check",
    ),
}

#: The services a customer can subscribe to: phone, extra lines and the internet add-ons.
SERVICE_COLUMNS: tuple[str, ...] = (
    "PhoneService",
    "MultipleLines",
    *(column for column, domain in CATEGORICAL_DOMAINS.items() if domain == _INTERNET_ADDON),
)
INTEGER_COLUMNS = ("SeniorCitizen", "tenure")
FLOAT_COLUMNS = ("MonthlyCharges", "TotalCharges")
NUMERIC_COLUMNS = INTEGER_COLUMNS + FLOAT_COLUMNS

#: The 21 columns in the order of the public CSV.
COLUMNS: tuple[str, ...] = (
    ID_COLUMN,
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    TARGET,
)

FEATURES: tuple[str, ...] = tuple(c for c in COLUMNS if c not in (ID_COLUMN, TARGET))

#: Columns that are strings on read. `TotalCharges` is read as text and coerced, because the
#: public file holds " " for customers in their first month.
STRING_COLUMNS: tuple[str, ...] = (ID_COLUMN, *CATEGORICAL_DOMAINS, TARGET)
