"""DuckDB macros that parse loan-tape text cells, installed as temporary macros.

Every parser takes cleaned text (``ll_clean``) and returns NULL when the text does not
parse, so validation compares "text present" with "value present". The macros are pure
SQL, so parsing runs vectorised inside DuckDB over whole columns.
"""

from __future__ import annotations

import duckdb

# Characters trimmed from cells: space, tab, LF, CR, ideographic space, no-break space.
_TRIM = "' ' || chr(9) || chr(10) || chr(13) || chr(12288) || chr(160)"

# Null tokens of the contract, plus spellings pandas and spreadsheets write for "missing".
NULL_TOKENS = ("", "NULL", "null", "Null", "\\N", "NA", "N/A", "n/a", "na", "-", "--", "—", "——",
               "nan", "NaN", "None", "#N/A")

_DATE_YMD = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d*)?)?)?"
_DATE_CN = r"\d{4}年\d{1,2}月\d{1,2}日?( ?\d{1,2}[:时]\d{1,2}.*)?"
_DATE_ONLY = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{8}|\d{4}年\d{1,2}月\d{1,2}日?"
# ISO 8601 date and time with a zone: 2017-02-03T21:59:59+08:00, 2017-02-03 13:59:59Z.
_DATE_YMD_ZONE = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d*)?)?(Z|[+-]\d{2}(:?\d{2})?)"
# 2017年2月3日 10:20:11, 2017年2月3日10时20分11秒, 2017年2月3日 10:20; groups 1-6 are
# year, month, day, hour, minute and the optional seconds (with a fraction).
_DATETIME_CN = r"(\d{4})年(\d{1,2})月(\d{1,2})日? ?(\d{1,2})[:时](\d{1,2})(?:分|[:分](\d{1,2}(?:\.\d+)?)秒?)?"

MACROS = f"""
create or replace temp macro ll_null_token(s) as (
    s in ({", ".join("'" + token + "'" for token in NULL_TOKENS)})
);
-- Trim and null tokens; the regular expression skips the costly trim for clean cells.
create or replace temp macro ll_clean(s) as (
    case
        when s is null then null
        when regexp_matches(s, '^[\\s\\x{{3000}}\\x{{a0}}]|[\\s\\x{{3000}}\\x{{a0}}]$')
            then case when ll_null_token(trim(s, {_TRIM})) then null else trim(s, {_TRIM}) end
        when strlen(s) > 6 then s
        when ll_null_token(s) then null
        else s
    end
);
create or replace temp macro ll_digits(s) as (
    case when regexp_matches(s, '[０-９．，－＋％：]')
         then translate(s, '０１２３４５６７８９．，－＋％：', '0123456789.,-+%:')
         else s
    end
);
create or replace temp macro ll_amount_text(s) as (
    regexp_replace(
        replace(replace(replace(replace(replace(ll_digits(s), ',', ''), '¥', ''), '￥', ''), ' ', ''), 'RMB', ''),
        '(万元|万|元)$', '')
);
-- Amount in yuan as DECIMAL(38, 6); plain numbers take the fast first branch.
create or replace temp macro ll_amount(s, multiplier) as (
    case
        when regexp_full_match(s, '-?\\d{{1,12}}(\\.\\d{{1,6}})?')
            then try_cast(s as decimal(18, 6)) * multiplier
        when regexp_full_match(ll_amount_text(s), '[+-]?(\\d+\\.?\\d*|\\.\\d+)')
            then try_cast(ll_amount_text(s) as decimal(38, 6))
                 * (case when regexp_matches(s, '万元?$') then 10000 else 1 end) * multiplier
    end
);
-- Amount rounded to the fen; the first branch avoids 128-bit decimal arithmetic.
create or replace temp macro ll_amount_fen(s) as (
    case when regexp_full_match(s, '-?\\d{{1,15}}(\\.\\d{{1,6}})?') then try_cast(s as decimal(18, 2))
         else try_cast(round(ll_amount(s, 1), 2) as decimal(18, 2))
    end
);
create or replace temp macro ll_int_text(s) as (
    regexp_replace(replace(ll_digits(s), ',', ''), '(天|期|个月|月|日|岁|年)$', '')
);
create or replace temp macro ll_int(s) as (
    case
        when regexp_full_match(s, '-?\\d{{1,9}}') then cast(s as integer)
        when regexp_full_match(ll_int_text(s), '[+-]?\\d+(\\.0*)?')
            then try_cast(try_cast(ll_int_text(s) as decimal(38, 4)) as integer)
    end
);
create or replace temp macro ll_number_text(s) as (
    replace(replace(ll_digits(s), ',', ''), ' ', '')
);
create or replace temp macro ll_double(s) as (
    case when regexp_full_match(s, '-?\\d{{1,15}}(\\.\\d+)?') then cast(s as double)
         when regexp_full_match(ll_number_text(s), '[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?')
         then try_cast(ll_number_text(s) as double)
    end
);
create or replace temp macro ll_rate_is_percent(s) as (
    regexp_matches(s, '[%％]$')
);
create or replace temp macro ll_rate_number(s) as (
    case when regexp_full_match(s, '-?\\d{{1,6}}(\\.\\d+)?') then cast(s as double)
         else ll_double(rtrim(ll_number_text(s), '%'))
    end
);
create or replace temp macro ll_ymd_dashes(s) as (
    regexp_replace(s, '^(\\d{{4}})[-/.](\\d{{1,2}})[-/.](\\d{{1,2}})', '\\1-\\2-\\3')
);
create or replace temp macro ll_date_text(s) as (
    case
        when regexp_full_match(s, '{_DATE_YMD}')
            then regexp_replace(s, '^(\\d{{4}})[-/.](\\d{{1,2}})[-/.](\\d{{1,2}}).*$', '\\1-\\2-\\3')
        when regexp_full_match(s, '\\d{{8}}')
            then substr(s, 1, 4) || '-' || substr(s, 5, 2) || '-' || substr(s, 7, 2)
        when regexp_full_match(s, '\\d{{14}}')
            then substr(s, 1, 4) || '-' || substr(s, 5, 2) || '-' || substr(s, 7, 2)
        when regexp_full_match(s, '{_DATE_CN}')
            then regexp_replace(s, '^(\\d{{4}})年(\\d{{1,2}})月(\\d{{1,2}}).*$', '\\1-\\2-\\3')
    end
);
create or replace temp macro ll_month_text(s) as (
    case
        when regexp_full_match(s, '\\d{{4}}[-/.]\\d{{1,2}}')
            then regexp_replace(s, '^(\\d{{4}})[-/.](\\d{{1,2}})$', '\\1-\\2-1')
        when regexp_full_match(s, '\\d{{6}}')
            then substr(s, 1, 4) || '-' || substr(s, 5, 2) || '-1'
        when regexp_full_match(s, '\\d{{4}}年\\d{{1,2}}月')
            then regexp_replace(s, '^(\\d{{4}})年(\\d{{1,2}})月$', '\\1-\\2-1')
    end
);
create or replace temp macro ll_excel_serial(s) as (
    case when regexp_full_match(s, '\\d{{2,5}}(\\.\\d+)?')
         then date '1899-12-30' + cast(floor(cast(s as double)) as integer)
    end
);
-- Parsed date including far-future sentinels; NULL when the text is not a date.
create or replace temp macro ll_date_any(s, excel, month_ok) as (
    case when regexp_full_match(s, '\\d{{4}}-\\d{{2}}-\\d{{2}}') then try_cast(s as date) else coalesce(
        try_cast(ll_date_text(ll_digits(s)) as date),
        case when month_ok then try_cast(ll_month_text(ll_digits(s)) as date) end,
        case when excel then ll_excel_serial(s) end
    ) end
);
create or replace temp macro ll_is_sentinel(d) as (year(d) >= 2900);
-- Parsed local (Asia/Shanghai) timestamp, seconds and fractions kept; NULL when the text is
-- not a date or time. Text with a zone offset (ISO 8601 'Z', '+08:00') is converted to
-- Shanghai time. Excel serials are rounded to the millisecond, as Excel stores times.
create or replace temp macro ll_timestamp_any(s, excel) as (
    case when regexp_full_match(s, '\\d{{4}}-\\d{{2}}-\\d{{2}}( \\d{{2}}:\\d{{2}}(:\\d{{2}})?)?') then try_cast(s as timestamp)
    else coalesce(
        case when regexp_full_match(ll_digits(s), '{_DATE_YMD}')
             then try_cast(ll_ymd_dashes(replace(ll_digits(s), 'T', ' ')) as timestamp)
        end,
        case when regexp_full_match(ll_digits(s), '{_DATE_YMD_ZONE}')
             then timezone('Asia/Shanghai', try_cast(ll_ymd_dashes(ll_digits(s)) as timestamptz))
        end,
        case when regexp_full_match(ll_digits(s), '\\d{{14}}')
             then try_strptime(ll_digits(s), '%Y%m%d%H%M%S')
        end,
        case when regexp_full_match(ll_digits(s), '{_DATETIME_CN}')
             then try_cast(regexp_replace(regexp_replace(ll_digits(s), '^{_DATETIME_CN}$',
                           '\\1-\\2-\\3 \\4:\\5:\\6'), ':$', ':00') as timestamp)
        end,
        -- A date alone means midnight; a date with an impossible time stays invalid.
        case when regexp_full_match(ll_digits(s), '{_DATE_ONLY}')
             then cast(try_cast(ll_date_text(ll_digits(s)) as date) as timestamp)
        end,
        case when excel and regexp_full_match(s, '\\d{{2,5}}(\\.\\d+)?')
             then timestamp '1899-12-30 00:00:00'
                  + to_days(cast(floor(cast(s as double)) as integer))
                  + to_milliseconds(cast(round((cast(s as double) - floor(cast(s as double))) * 86400000) as bigint))
        end
    ) end
);
-- GB 11643 check digit of an 18-digit resident ID number.
create or replace temp macro ll_idcard_valid(t) as (
    case
        when regexp_full_match(t, '[1-9]\\d{{16}}[\\dX]')
            then substr('10X98765432',
                        list_sum(list_transform(range(17), lambda i: coalesce(try_cast(substr(t, i + 1, 1) as integer), 0)
                            * [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2][i + 1]))::bigint % 11 + 1, 1)
                 = substr(t, 18, 1)
                 and try_cast(substr(t, 7, 4) || '-' || substr(t, 11, 2) || '-' || substr(t, 13, 2) as date)
                     is not null
        when regexp_full_match(t, '[1-9]\\d{{14}}')
            then try_cast('19' || substr(t, 7, 2) || '-' || substr(t, 9, 2) || '-' || substr(t, 11, 2) as date)
                 is not null
        else false
    end
);
create or replace temp macro ll_idcard_birth(t) as (
    case when length(t) = 18
         then try_cast(substr(t, 7, 4) || '-' || substr(t, 11, 2) || '-' || substr(t, 13, 2) as date)
         else try_cast('19' || substr(t, 7, 2) || '-' || substr(t, 9, 2) || '-' || substr(t, 11, 2) as date)
    end
);
create or replace temp macro ll_idcard_gender(t) as (
    case when try_cast(substr(t, case when length(t) = 18 then 17 else 15 end, 1) as integer) % 2 = 1
         then 'M' else 'F' end
);
create or replace temp macro ll_age_at(birth, on_date) as (
    year(on_date) - year(birth)
    - case when strftime(on_date, '%m%d') < strftime(birth, '%m%d') then 1 else 0 end
);
create or replace temp macro ll_luhn(t) as (
    list_sum(list_transform(range(length(t)), lambda i:
        case when i % 2 = 1
             then coalesce(try_cast(substr(t, length(t) - i, 1) as integer), 0) * 2
                  - case when coalesce(try_cast(substr(t, length(t) - i, 1) as integer), 0) >= 5 then 9 else 0 end
             else coalesce(try_cast(substr(t, length(t) - i, 1) as integer), 0)
        end)) % 10 = 0
);
create or replace temp macro ll_looks_idcard(t) as (
    case when regexp_full_match(upper(t), '[1-9]\\d{{5}}(18|19|20)\\d{{2}}(0[1-9]|1[0-2])(0[1-9]|[12]\\d|3[01])\\d{{3}}[\\dX]')
         then ll_idcard_valid(upper(t)) else false end
);
create or replace temp macro ll_looks_mobile(t) as (
    regexp_full_match(regexp_replace(t, '[ -]', '', 'g'), '(\\+?86)?1[3-9]\\d{{9}}')
);
create or replace temp macro ll_looks_card(t) as (
    case when regexp_full_match(regexp_replace(t, ' ', '', 'g'), '\\d{{16,19}}')
         then ll_luhn(regexp_replace(t, ' ', '', 'g')) else false end
);
-- Masks ID-card and mobile numbers written inside free text.
create or replace temp macro ll_mask_personal(t) as (
    regexp_replace(
        regexp_replace(t,
            '(^|[^0-9])[1-9][0-9]{{5}}(18|19|20)[0-9]{{2}}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{{3}}[0-9Xx]([^0-9]|$)',
            '\\1***\\5', 'g'),
        '(^|[^0-9])1[3-9][0-9]{{9}}([^0-9]|$)', '\\1***\\2', 'g')
);
create or replace temp macro ll_pii_key(t) as (
    regexp_replace(regexp_replace(upper(t), '[ -]', '', 'g'), '^\\+?86(1[3-9][0-9]{{9}})$', '\\1')
);
"""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create the parsing macros on ``con`` (temporary, so nothing is stored in the file)."""
    con.execute(MACROS)
