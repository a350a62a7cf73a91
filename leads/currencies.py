"""ISO 4217 currency codes (the active ones) and the one check of a currency a person or an integration sends."""
from __future__ import annotations

from django.core.exceptions import ValidationError

ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF
CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG
HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())


def currency_clean(value) -> str:
    """An ISO 4217 code, upper-cased ("eur" → "EUR"); "" for none; a ValidationError for anything else."""
    if value in (None, ""):
        return ""
    code = str(value).strip().upper()
    if code not in ISO_4217:
        raise ValidationError("Enter an ISO 4217 currency code, e.g. USD or EUR.", code="currency")
    return code
